"""The smaller defects of issue 15 (defect 6), one test each.

Password changes revoke login tokens; technicians cannot hand work to others; cookies are
Secure over TLS (directly, via a trusted proxy, or forced); push limits count bytes and
readings; 405 lists every method; unparseable bodies are documented 422 problems.
(`2026-02-31` is refused by the codecs: tests/api/test_push_hostile.py.)
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.main import create_app
from api.web.session import COOKIE, csrf_token
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles

WO = "/api/v1/work-orders"
PUSH = "/api/v1/readings"


def test_a_password_change_revokes_login_tokens(api: Api) -> None:
    user_id = api.user_ids["technician"]
    issued = api.ok("admin", "POST", "/api/v1/tokens", json={"name": "t", "user_id": user_id})
    assert api.call("technician", "GET", "/api/v1/users/me").status_code == 200
    new_password = secrets.token_hex(8)
    api.ok("admin", "PATCH", f"/api/v1/users/{user_id}", json={"password": new_password})
    assert api.call("technician", "GET", "/api/v1/users/me").status_code == 401
    # A token an admin issued for the user is an integration's, not a session: it stays.
    kept = {"Authorization": f"Bearer {issued['token']}"}
    assert api.client.get("/api/v1/users/me", headers=kept).status_code == 200
    relogin = {"username": "technician", "password": new_password}
    assert api.client.post("/api/v1/auth/login", json=relogin).status_code == 200


def test_a_technician_cannot_create_an_order_for_another(api: Api, asset: dict[str, Any]) -> None:
    body = {"asset_id": asset["id"], "title": "Belt", "assignee_id": api.user_ids["technician2"]}
    refused = api.call("technician", "POST", WO, json=body)
    assert refused.status_code == 403, refused.text
    assert api.ok("facilities", "GET", WO)["total"] == 0
    mine = {**body, "assignee_id": api.user_ids["technician"]}
    assert api.call("technician", "POST", WO, json=mine).status_code == 201


def _session_cookies(response: httpx.Response) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]


@pytest.mark.parametrize(
    ("forced", "headers", "secure"),
    [
        (False, {}, False),
        (False, {"X-Forwarded-Proto": "https"}, True),  # uvicorn trusts 127.0.0.1's headers
        (True, {}, True),
    ],
)
def test_cookies_are_secure_over_tls(
    database_url: str, forced: bool, headers: dict[str, str], secure: bool
) -> None:
    settings = make_settings(database_url, secure_cookies=forced)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        password = secrets.token_hex(8)
        api.ok("admin", "PATCH", f"/api/v1/users/{api.user_ids['facilities']}",
               json={"password": password})  # fmt: skip
        # One request per client: a cookie jar would keep a Secure cookie from plain HTTP.
        # (httpx's own default timeout is 5 s: a loaded CI machine took longer.)
        login = httpx.post(
            f"{url}/ui/login",
            data={"username": "facilities", "password": password},
            headers=headers,
            timeout=30,
        )
        assert login.status_code == 303, login.text
        token = login.headers["set-cookie"].split(";", 1)[0].removeprefix(f"{COOKIE}=")
        browser = {**headers, "Cookie": f"{COOKIE}={token}"}
        # A comment without text answers with a flash cookie; a logout deletes the session's.
        form = {"text": "", "csrf": csrf_token(token)}
        flashed = httpx.post(f"{url}/ui/alerts/1/comment", data=form, headers=browser, timeout=30)
        logout = httpx.post(
            f"{url}/ui/logout", data={"csrf": csrf_token(token)}, headers=browser, timeout=30
        )
        cookies = [*_session_cookies(login), *_session_cookies(flashed), *_session_cookies(logout)]
        assert len(cookies) == 3, cookies
        for cookie in cookies:
            assert ("; Secure" in cookie or "; secure" in cookie) == secure, cookie


@dataclass
class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(database_url: str) -> Iterator[tuple[Api, FakeClock]]:
    """Pushes limited to 64 KiB (+16 KiB/s) and 100 readings (+10/s) per gateway."""
    clock = FakeClock()
    settings = make_settings(
        database_url,
        gateway_burst=1000,
        gateway_bytes_burst=64 * 1024,
        gateway_bytes_per_s=16 * 1024,
        gateway_readings_burst=100,
        gateway_readings_per_s=10,
    )
    with (
        serve(create_app(settings, clock=clock)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        api = Api(client, settings)
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        create_asset(api, site["id"])
        yield api, clock


def _batch(count: int, padding: int = 0) -> dict[str, Any]:
    now = time.time_ns()
    readings = [
        {"asset": "pump-01", "time": now + i, "sensors": {"vibration_rms": 1.0}}
        for i in range(count)
    ]
    return {"site": "plant-a", "readings": readings, "pad": "x" * padding}


def test_pushes_are_limited_by_bytes(limited: tuple[Api, FakeClock]) -> None:
    api, clock = limited
    big = _batch(1, padding=60 * 1024)
    # InfluxDB is absent: a push the limits let through answers 503.
    assert api.call("gateway", "POST", PUSH, json=big).status_code == 503
    refused = api.call("gateway", "POST", PUSH, json=big)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 3  # ~56 KiB of debt at 16 KiB/s
    clock.now += 5
    assert api.call("gateway", "POST", PUSH, json=big).status_code == 503


def test_pushes_are_limited_by_readings(limited: tuple[Api, FakeClock]) -> None:
    api, clock = limited
    assert api.call("gateway", "POST", PUSH, json=_batch(80)).status_code == 503
    refused = api.call("gateway", "POST", PUSH, json=_batch(80))
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "6"  # 60 missing at 10/s
    clock.now += 6
    assert api.call("gateway", "POST", PUSH, json=_batch(80)).status_code == 503


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/work-orders", "GET, POST"),
        ("PUT", "/api/v1/work-orders/1", "GET, PATCH"),
        ("POST", "/api/v1/sites/1", "DELETE, GET, PATCH"),
        ("DELETE", "/ui/login", "GET, POST"),
    ],
)
def test_405_allows_every_method(api: Api, method: str, path: str, allowed: str) -> None:
    response = api.call("admin", method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x"],
)
def test_unparseable_bodies_are_documented_422(api: Api, content_type: str) -> None:
    response = api.client.post(
        "/ui/login", content=b"not multipart", headers={"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["where"], problem["reason"]) == ("body", "unparseable_body")
    assert response.headers["content-type"] == "application/problem+json"
    bad_json = api.call(
        "admin", "POST", "/api/v1/sites", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
