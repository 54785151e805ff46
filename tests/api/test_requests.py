"""Work requests: the public form of a QR label, abuse limits, triage, the requester's page."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from api.main import create_app
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles

REQ = "/api/v1/requests"


@pytest.fixture
def app(database_url: str) -> Iterator[Api]:
    """The app with a frozen rate-limit clock: nothing refills while a test runs."""
    settings = make_settings(database_url)
    with (
        serve(create_app(settings, clock=lambda: 1000.0)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        harness = Api(client, settings)
        site = create_site(harness, "hotel")
        setup_roles(harness, site["id"])
        create_asset(harness, site["id"], code="ahu-lobby")
        create_asset(harness, site["id"], code="cold-room")
        yield harness


def _assets(api: Api) -> dict[str, dict[str, Any]]:
    return {a["code"]: a for a in api.ok("admin", "GET", "/api/v1/assets")["items"]}


def decode(image: Image.Image) -> list[str]:
    """The texts of the QR codes in a picture."""
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]


def label_url(api: Api, asset_id: int) -> str:
    """The URL an asset's PNG label holds (decoded from the picture)."""
    response = api.call("facilities", "GET", f"/api/v1/assets/{asset_id}/qr")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    (url,) = decode(Image.open(io.BytesIO(response.content)))
    return url


def form_path(url: str) -> str:
    path = httpx.URL(url).path
    assert path.startswith("/q/")
    return path


def submit(api: Api, path: str, **fields: Any) -> httpx.Response:
    files = fields.pop("files", None)
    data = {"category": "too_hot_or_cold", "description": "Lobby AC blows warm air",
            "urgency": "urgent", **fields}  # fmt: skip
    return api.client.post(path, data=data, files=files, follow_redirects=False)


def test_request_from_a_label_is_triaged_and_followed(app: Api) -> None:
    """No account: file from the label's page, facilities accept it, a technician finishes."""
    asset = _assets(app)["ahu-lobby"]
    url = label_url(app, asset["id"])
    # The label holds a random token (128 bits), not the asset's id.
    assert len(httpx.URL(url).path.removeprefix("/q/")) >= 22
    page = app.client.get(form_path(url))
    assert page.status_code == 200
    assert "ahu-lobby" in page.text
    sent = submit(app, form_path(url), name="Lan (front desk)", phone="+84 28 1234 5678")
    assert sent.status_code == 303, sent.text
    status_path = sent.headers["location"].split("?")[0]
    assert status_path.startswith("/t/")
    assert 'data-step="received"' in app.client.get(status_path).text
    (request,) = app.ok("facilities", "GET", f"{REQ}?status=new")["items"]
    assert request["asset_id"] == asset["id"]
    assert request["source"] == "public"
    assert request["urgency"] == "urgent"
    assert request["requester_phone"] == "+84 28 1234 5678"
    tech = app.user_ids["technician"]
    triaged = app.ok(
        "facilities", "POST", f"{REQ}/{request['id']}/triage",
        json={"action": "accept", "assignee_id": tech},
    )  # fmt: skip
    assert triaged["status"] == "accepted"
    order = app.ok("technician", "GET", f"/api/v1/work-orders/{triaged['work_order_id']}")
    assert order["state"] == "assigned"
    assert order["priority"] == 1
    assert order["work_type"] == "corrective"
    assert "Lobby AC" in order["description"]
    status = app.client.get(status_path).text
    assert re.search(r'class="done" data-step="accepted"', status)
    for to in ("in_progress", "completed"):
        body = {"to": to, "resolution": "fixed"} if to == "completed" else {"to": to}
        app.ok("technician", "POST", f"/api/v1/work-orders/{order['id']}/transitions", json=body)
    status = app.client.get(status_path).text
    assert re.search(r'class="done" data-step="done"', status)
    # Twice is refused: the request is no longer new.
    again = app.call("facilities", "POST", f"{REQ}/{request['id']}/triage",
                     json={"action": "decline", "reason": "duplicate"})  # fmt: skip
    assert again.status_code == 409


def test_merge_and_decline(app: Api) -> None:
    asset = _assets(app)["cold-room"]
    path = form_path(label_url(app, asset["id"]))
    order = app.ok(
        "facilities",
        "POST",
        "/api/v1/work-orders",
        json={"asset_id": asset["id"], "title": "Door seal", "work_type": "corrective"},
    )
    for text in ("Door alarm beeping", "Door does not close", "Spam spam"):
        assert submit(app, path, description=text).status_code == 303
    new = {r["description"]: r for r in app.ok("facilities", "GET", REQ)["items"]}
    merged = app.ok("facilities", "POST", f"{REQ}/{new['Door does not close']['id']}/triage",
                    json={"action": "merge", "work_order_id": order["id"]})  # fmt: skip
    assert merged["status"] == "merged"
    assert merged["work_order_id"] == order["id"]
    notes = app.ok("facilities", "GET", f"/api/v1/work-orders/{order['id']}")["notes"]
    assert "Door does not close" in notes[-1]["text"]
    no_reason = app.call("facilities", "POST", f"{REQ}/{new['Spam spam']['id']}/triage",
                         json={"action": "decline"})  # fmt: skip
    assert no_reason.status_code == 422
    declined = app.ok(
        "facilities",
        "POST",
        f"{REQ}/{new['Spam spam']['id']}/triage",
        json={"action": "decline", "reason": "Not a maintenance problem"},
    )
    assert declined["status"] == "declined"
    other = _assets(app)["ahu-lobby"]
    wrong = app.call("facilities", "POST", f"{REQ}/{new['Door alarm beeping']['id']}/triage",
                     json={"action": "merge", "work_order_id": 999})  # fmt: skip
    assert wrong.status_code == 422
    del other


def test_one_client_is_throttled(app: Api) -> None:
    """100 requests from one client in a minute: a few are filed, the rest get 429."""
    path = form_path(label_url(app, _assets(app)["ahu-lobby"]["id"]))
    codes = [submit(app, path, description=f"warm {i}").status_code for i in range(100)]
    assert codes.count(303) == app.settings.requests.client_burst
    assert codes.count(429) == 100 - app.settings.requests.client_burst
    refused = submit(app, path)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many requests" in refused.text
    filed = app.ok("facilities", "GET", REQ)["total"]
    assert filed == app.settings.requests.client_burst


def test_size_limits_and_honeypot(app: Api) -> None:
    path = form_path(label_url(app, _assets(app)["ahu-lobby"]["id"]))
    photo = ("big.jpg", b"\xff\xd8" + b"0" * (20 * 1024 * 1024), "image/jpeg")
    big = submit(app, path, files={"photo": photo})
    assert big.status_code == 413
    assert "The photo is too large (20 MB). The limit is 8 MB" in big.text
    long = submit(app, path, description="x" * 5000)
    assert long.status_code == 422
    assert "too long" in long.text
    bot = submit(app, path, website="http://spam.example")
    assert bot.status_code == 200
    assert "Thank you" in bot.text
    small = ("ok.png", b"\x89PNG\r\n\x1a\n" + b"0" * 1000, "image/png")
    assert submit(app, path, files={"photo": small}).status_code == 303
    (stored,) = app.ok("facilities", "GET", REQ)["items"]
    assert stored["has_photo"] is True
    picture = app.call("facilities", "GET", f"{REQ}/{stored['id']}/photo")
    assert picture.content == small[1]
    assert picture.headers["content-type"] == "image/png"


def test_a_requester_sees_only_their_own(app: Api) -> None:
    """Status tokens open one request each; label tokens rotate; guesses find nothing."""
    asset = _assets(app)["ahu-lobby"]
    path = form_path(label_url(app, asset["id"]))
    mine = submit(app, path, description="My secret complaint", name="Anh").headers["location"]
    theirs = submit(app, path, description="Their complaint", phone="0909 000 111")
    mine_page = app.client.get(mine.split("?")[0]).text
    assert "My secret complaint" in mine_page
    assert "Their complaint" not in mine_page
    assert "0909" not in mine_page
    assert theirs.status_code == 303
    for guess in ("/t/1", "/t/" + "A" * 32, f"/q/{asset['id']}"):
        assert app.client.get(guess).status_code == 404
    # Rotating the label: the old code stops working, the new one opens the same asset.
    rotated = app.ok("facilities", "POST", f"/api/v1/assets/{asset['id']}/qr/rotate")
    assert app.client.get(path).status_code == 404
    assert form_path(rotated["url"]) != path
    assert label_url(app, asset["id"]) == rotated["url"]
    # Staff only: anonymous callers get nothing of the API.
    assert app.call(None, "GET", REQ).status_code == 401
    assert app.call("technician", "GET", REQ).status_code == 403


def test_label_sheet_decodes_to_each_asset(app: Api) -> None:
    """The site's PDF opens, and each code decodes to the request page of its own asset."""
    site = app.ok("admin", "GET", "/api/v1/sites?code=hotel")["items"][0]
    response = app.call("facilities", "GET", f"/api/v1/sites/{site['id']}/qr-labels")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    urls = [
        url
        for pg in reader.pages
        for image in pg.images
        if image.image
        for url in decode(image.image)
    ]
    assets = _assets(app)
    assert len(urls) == len(assets) + 1  # the site-wide page first
    site_page = app.client.get(form_path(urls[0])).text
    assert 'name="location"' in site_page
    assert "required" in site_page
    for code, url in zip(sorted(assets), urls[1:], strict=True):
        assert label_url(app, assets[code]["id"]) == url
        assert f"<small>{code}</small>" in app.client.get(form_path(url)).text
    svg = app.call("facilities", "GET", f"/api/v1/assets/{assets['cold-room']['id']}/qr?format=svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content


def test_site_wide_request_and_api_filing(app: Api) -> None:
    site = app.ok("admin", "GET", "/api/v1/sites?code=hotel")["items"][0]
    created = app.ok("service", "POST", REQ, json={
        "site_id": site["id"], "description": "Room 302: shower is cold", "location": "302",
        "language": "vi",
    })  # fmt: skip
    assert created["status"] == "new"
    assert created["asset_id"] is None
    status = httpx.URL(created["status_url"]).path
    page = app.client.get(status, headers={"Accept-Language": "vi-VN,vi;q=0.9"})
    assert "Room 302" in page.text
    assert page.headers["content-language"] == "vi"
    # A site-wide request names no asset: it cannot become an order until merged or declined.
    accept = app.call("facilities", "POST", f"{REQ}/{created['id']}/triage",
                      json={"action": "accept"})  # fmt: skip
    assert accept.status_code == 422
    # Named at triage (an asset of the request's site), it becomes the order's asset.
    lobby = _assets(app)["ahu-lobby"]
    named = app.ok("facilities", "POST", f"{REQ}/{created['id']}/triage",
                   json={"action": "accept", "asset_id": lobby["id"]})  # fmt: skip
    assert named["asset_id"] == lobby["id"]
    assert named["status"] == "accepted"
    assert app.call("service", "POST", REQ, json={"description": "xx y"}).status_code == 422
