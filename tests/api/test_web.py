"""The web UI: login and its cookie, role landing pages, pages per role, CSRF, page actions.

The app runs in a real uvicorn server (as in the other API tests); each "browser" is an httpx
client with its own cookie jar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import alert_body, make_settings, serve

PASSWORD = "correct horse battery"
SAME_ORIGIN: dict[str, str] = {}  # filled with the server's origin by the fixture


@dataclass
class Ui:
    """The running app, with admin and service headers and the browsers opened on it."""

    url: str
    admin: dict[str, str]
    service: dict[str, str]
    client: httpx.Client
    browsers: list[httpx.Client] = field(default_factory=list)

    def api(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        """A JSON API call that must succeed."""
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def browser(self) -> httpx.Client:
        """A separate browser (its own cookie jar) on the same running app."""
        browser = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.browsers.append(browser)
        return browser

    def login(self, username: str) -> httpx.Client:
        """A browser logged in as username."""
        browser = self.browser()
        response = browser.post(
            "/ui/login", data={"username": username, "password": PASSWORD}, headers=SAME_ORIGIN
        )
        assert response.status_code == 303, response.text
        return browser


@pytest.fixture
def ui(database_url: str) -> Iterator[Ui]:
    """An app with site plant-a, two assets, users of each crew role, and one alert."""
    settings = make_settings(database_url)
    assert settings.admin_token
    assert settings.service_token
    admin = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    service = {"Authorization": f"Bearer {settings.service_token.get_secret_value()}"}
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        SAME_ORIGIN["Origin"] = url
        harness = Ui(url, admin, service, client)
        site = harness.api("POST", "/api/v1/sites", admin, json={"code": "plant-a", "name": "A"})
        for code, criticality in (("pump-01", "high"), ("fan-02", "low")):
            harness.api(
                "POST",
                "/api/v1/assets",
                admin,
                json={
                    "site_id": site["id"],
                    "code": code,
                    "name": f"Asset {code}",
                    "asset_type": "pump",
                    "criticality": criticality,
                },
            )
        for name, role in (("fac", "facilities"), ("tech", "technician"), ("boss", "admin")):
            harness.api(
                "POST",
                "/api/v1/users",
                admin,
                json={"username": name, "role": role, "password": PASSWORD},
            )
        yield harness
        for browser in harness.browsers:
            browser.close()


def post_alert(ui: Ui, **kwargs: Any) -> dict[str, Any]:
    """The analytics service posts an anomaly on pump-01 (opens a work order by policy)."""
    result: dict[str, Any] = ui.api(
        "POST", "/api/v1/alerts", ui.service, json=alert_body("plant-a", "pump-01", **kwargs)
    )
    return result


def csrf_of(html: str) -> str:
    """The form token a page embeds."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_root_and_unauthenticated_pages_redirect_to_login(ui: Ui) -> None:
    browser = ui.browser()
    assert browser.get("/").headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/fleet", "/ui/alerts", "/ui/board", "/ui/my", "/ui/kpis"):
        response = browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=%2Fui%2F"), path
    assert browser.get("/ui/login").status_code == 200
    # A bogus cookie is no session either.
    browser.cookies.set("eqm_session", "eqm_forged")
    assert browser.get("/ui/fleet").status_code == 303


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_login_sets_a_strict_httponly_cookie_and_lands_by_role(ui: Ui) -> None:
    for username, home in (("fac", "/ui/fleet"), ("tech", "/ui/my"), ("boss", "/ui/fleet")):
        browser = ui.browser()
        response = browser.post(
            "/ui/login", data={"username": username, "password": PASSWORD}, headers=SAME_ORIGIN
        )
        assert response.status_code == 303
        assert response.headers["location"] == home
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("eqm_session=eqm_")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert browser.get("/ui/").headers["location"] == home
        assert browser.get("/ui/login").headers["location"] == home  # already logged in
    # The cookie is the API's own login token: it works as a bearer token too.
    token = ui.login("fac").cookies["eqm_session"]
    me = ui.api("GET", "/api/v1/users/me", {"Authorization": f"Bearer {token}"})
    assert me["username"] == "fac"


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_wrong_password_fails_without_a_cookie(ui: Ui) -> None:
    browser = ui.browser()
    for username, password in (("fac", "wrong password"), ("nobody", PASSWORD), ("", "")):
        response = browser.post(
            "/ui/login", data={"username": username, "password": password}, headers=SAME_ORIGIN
        )
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert "set-cookie" not in response.headers
    assert browser.get("/ui/fleet").status_code == 303


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_login_next_stays_inside_the_ui(ui: Ui) -> None:
    browser = ui.browser()
    for target, expected in (
        ("/ui/board", "/ui/board"),
        ("https://evil.example/", "/ui/fleet"),
        ("//evil.example/ui/", "/ui/fleet"),
    ):
        response = browser.post(
            "/ui/login",
            data={"username": "fac", "password": PASSWORD, "next": target},
            headers=SAME_ORIGIN,
        )
        assert response.headers["location"] == expected


def test_pages_render_for_each_role(ui: Ui) -> None:
    alert = post_alert(ui)
    order_id = alert["work_order_id"]
    assert order_id is not None
    staff_pages = {
        "/ui/fleet": "Fleet overview",
        "/ui/alerts": "vibration rising",
        f"/ui/alerts/{alert['id']}": "Leading sensors",
        "/ui/kpis": "activations per day",
        "/ui/board": f"WO {order_id}",
        "/ui/my": "My work orders",
        f"/ui/work-orders/{order_id}": "Evidence",
    }
    for username in ("fac", "boss"):
        browser = ui.login(username)
        for path, text in staff_pages.items():
            response = browser.get(path)
            assert response.status_code == 200, (username, path, response.text[:300])
            assert text in response.text, (username, path)
            assert "<html" in response.text
    tech = ui.login("tech")
    for path in ("/ui/my", "/ui/alerts", "/ui/board", f"/ui/work-orders/{order_id}"):
        assert tech.get(path).status_code == 200, path
    assert f"WO {order_id}" in tech.get("/ui/my").text  # unassigned: offered to claim
    assert tech.get("/ui/kpis").status_code == 403  # alarm KPIs are for staff, as in the API


def test_fleet_shows_status_and_counts(ui: Ui) -> None:
    items = [
        {
            "site": "plant-a",
            "asset": "pump-01",
            "state": "alarm",
            "health": 31,
            "contributors": [{"sensor": "vibration_rms", "share": 0.8}],
            "observed_at": "2026-11-27T07:00:00Z",
        },
        {
            "site": "plant-a",
            "asset": "fan-02",
            "state": "normal",
            "health": 96,
            "observed_at": "2026-11-27T07:00:00Z",
        },
    ]
    ui.api("POST", "/api/v1/asset-status", ui.service, json={"items": items})
    html = ui.login("fac").get("/ui/fleet").text
    assert re.search(r'<span class="n">1</span><span class="l">in alarm', html)
    assert "vibration_rms 80%" in html
    assert "band-poor" in html
    assert "band-good" in html
    assert html.index("Asset pump-01") < html.index("Asset fan-02")  # worst first


def test_empty_alert_list_says_all_is_well(ui: Ui) -> None:
    html = ui.login("fac").get("/ui/alerts").text
    assert "No active alerts — all 2 assets healthy" in html


def test_live_fragment_is_the_data_part_only_and_304_when_unchanged(ui: Ui) -> None:
    browser = ui.login("fac")
    poll = {"X-Fragment": "1"}
    before = browser.get("/ui/alerts", headers=poll)
    assert before.status_code == 200
    assert "<html" not in before.text
    assert "No active alerts" in before.text
    etag = before.headers["etag"]
    same = browser.get("/ui/alerts", headers={**poll, "If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    post_alert(ui)
    after = browser.get("/ui/alerts", headers={**poll, "If-None-Match": etag})
    assert after.status_code == 200
    assert "vibration rising" in after.text
    assert after.headers["etag"] != etag
    # A comment (history only) moves the fingerprint too.
    alert_id = ui.api("GET", "/api/v1/alerts", ui.admin)["items"][0]["id"]
    page = browser.get(f"/ui/alerts/{alert_id}", headers=poll)
    token = csrf_of(browser.get(f"/ui/alerts/{alert_id}").text)
    browser.post(
        f"/ui/alerts/{alert_id}/comment", data={"csrf": token, "text": "on it"}, headers=SAME_ORIGIN
    )
    changed = browser.get(
        f"/ui/alerts/{alert_id}", headers={**poll, "If-None-Match": page.headers["etag"]}
    )
    assert changed.status_code == 200
    assert "on it" in changed.text
    # Full pages are always rendered (they carry the one-shot messages).
    assert browser.get("/ui/alerts", headers={"If-None-Match": etag}).status_code == 200


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_cross_origin_and_tokenless_posts_are_refused(ui: Ui) -> None:
    alert = post_alert(ui)
    browser = ui.login("fac")
    token = csrf_of(browser.get("/ui/alerts").text)
    path = f"/ui/alerts/{alert['id']}/acknowledge"
    forged = browser.post(path, data={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    referer = browser.post(
        path, data={"csrf": token}, headers={"Referer": "https://evil.example/x"}
    )
    assert referer.status_code == 403
    tokenless = browser.post(path, data={}, headers=SAME_ORIGIN)
    assert tokenless.status_code == 403
    wrong = browser.post(path, data={"csrf": "0" * 64}, headers=SAME_ORIGIN)
    assert wrong.status_code == 403
    login = ui.browser().post(
        "/ui/login",
        data={"username": "fac", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert login.status_code == 403
    state = ui.api("GET", f"/api/v1/alerts/{alert['id']}", ui.admin)["state"]
    assert state == "active_unacknowledged"  # none of them acknowledged it


def test_alert_actions_change_state(ui: Ui) -> None:
    alert = post_alert(ui)
    browser = ui.login("fac")
    token = csrf_of(browser.get("/ui/alerts").text)
    base = f"/ui/alerts/{alert['id']}"
    comment = browser.post(
        f"{base}/comment", data={"csrf": token, "text": "looking into it"}, headers=SAME_ORIGIN
    )
    assert comment.status_code == 303
    ack = browser.post(
        f"{base}/acknowledge", data={"csrf": token, "next": base}, headers=SAME_ORIGIN
    )
    assert ack.headers["location"] == base
    page = browser.get(base).text
    assert "Alert acknowledged." in page  # the flash message, once
    assert "Active, acknowledged" in page
    assert "Alert acknowledged." not in browser.get(base).text
    assert ui.api("GET", f"/api/v1/alerts/{alert['id']}", ui.admin)["state"] == (
        "active_acknowledged"
    )
    again = browser.post(f"{base}/acknowledge", data={"csrf": token}, headers=SAME_ORIGIN)
    assert again.status_code == 303
    assert "needs no acknowledgement" in browser.get("/ui/alerts").text  # refusal as a message
    shelve = browser.post(
        f"{base}/shelve",
        data={"csrf": token, "hours": "8", "reason": "bearing swap tonight"},
        headers=SAME_ORIGIN,
    )
    assert shelve.status_code == 303
    shelved = ui.api("GET", f"/api/v1/alerts/{alert['id']}", ui.admin)
    assert shelved["state"] == "shelved"
    history = ui.api("GET", f"/api/v1/alerts/{alert['id']}/history", ui.admin)["items"]
    events = [(e["event"], e["actor"], e["reason"]) for e in history]
    assert ("comment", "user:fac", "looking into it") in events
    assert ("shelve", "user:fac", "bearing swap tonight") in events
    unshelve = browser.post(f"{base}/unshelve", data={"csrf": token}, headers=SAME_ORIGIN)
    assert unshelve.status_code == 303
    assert ui.api("GET", f"/api/v1/alerts/{alert['id']}", ui.admin)["state"] == (
        "active_unacknowledged"
    )
    # Technicians may acknowledge but not shelve (as in the API).
    tech = ui.login("tech")
    tech_token = csrf_of(tech.get("/ui/alerts").text)
    refused = tech.post(
        f"{base}/shelve",
        data={"csrf": tech_token, "hours": "1", "reason": "x"},
        headers=SAME_ORIGIN,
    )
    assert refused.status_code == 403


def test_technician_claims_starts_and_completes(ui: Ui) -> None:
    order_id = post_alert(ui)["work_order_id"]
    tech = ui.login("tech")
    page = f"/ui/work-orders/{order_id}"

    def step(to: str, **fields: str) -> None:
        html = tech.get(page).text
        etag = re.search(r'name="etag" value="([^"]+)"', html)
        assert etag
        data = {"csrf": csrf_of(html), "etag": etag.group(1).replace("&#34;", '"'), "to": to}
        response = tech.post(f"{page}/transition", data={**data, **fields}, headers=SAME_ORIGIN)
        assert response.status_code == 303

    order = ui.api("GET", f"/api/v1/work-orders/{order_id}", ui.admin)
    if order["assignee_id"] is None:
        step("assigned")
    step("in_progress")
    step("completed", resolution="fixed", failure_code="BRG-WEAR", reason="replaced bearing")
    done = ui.api("GET", f"/api/v1/work-orders/{order_id}", ui.admin)
    assert done["state"] == "completed"
    assert done["failure_code"] == "BRG-WEAR"
    assert done["resolution"] == "fixed"
    assert done["notes"][-1]["text"] == "replaced bearing"
    assert "Completed" in tech.get("/ui/my").text


def test_an_order_assigned_while_open_can_be_accepted(ui: Ui) -> None:
    tech_id = ui.api("GET", "/api/v1/users?role=technician", ui.admin)["items"][0]["id"]
    asset_id = ui.api("GET", "/api/v1/assets?code=fan-02", ui.admin)["items"][0]["id"]
    order = ui.api(
        "POST",
        "/api/v1/work-orders",
        ui.admin,
        json={"asset_id": asset_id, "title": "Belt check", "assignee_id": tech_id},
    )
    assert order["state"] == "open"
    tech = ui.login("tech")
    html = tech.get(f"/ui/work-orders/{order['id']}").text
    assert ">Accept<" in html
    etag = re.search(r'name="etag" value="([^"]+)"', html)
    assert etag
    tech.post(
        f"/ui/work-orders/{order['id']}/transition",
        data={"csrf": csrf_of(html), "etag": etag.group(1).replace("&#34;", '"'), "to": "assigned"},
        headers=SAME_ORIGIN,
    )
    assert ui.api("GET", f"/api/v1/work-orders/{order['id']}", ui.admin)["state"] == "assigned"


def test_stale_etag_is_refused_with_a_message(ui: Ui) -> None:
    order_id = post_alert(ui)["work_order_id"]
    tech = ui.login("tech")
    html = tech.get(f"/ui/work-orders/{order_id}").text
    # Someone else changes the order after the page was shown.
    ui.api("PATCH", f"/api/v1/work-orders/{order_id}", ui.admin, json={"priority": 4})
    response = tech.post(
        f"/ui/work-orders/{order_id}/transition",
        data={"csrf": csrf_of(html), "etag": f'"{order_id}.1"', "to": "assigned"},
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 303
    assert "Someone else changed this work order" in tech.get(f"/ui/work-orders/{order_id}").text
    assert ui.api("GET", f"/api/v1/work-orders/{order_id}", ui.admin)["state"] == "open"


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_logout_revokes_the_session(ui: Ui) -> None:
    browser = ui.login("fac")
    token = browser.cookies["eqm_session"]
    html = browser.get("/ui/fleet").text
    response = browser.post("/ui/logout", data={"csrf": csrf_of(html)}, headers=SAME_ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    revoked = ui.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401
    browser.cookies.set("eqm_session", token)
    assert browser.get("/ui/fleet").status_code == 303


@pytest.mark.sql_agnostic  # cookies, redirects and CSRF
def test_static_assets_are_local(ui: Ui) -> None:
    page = ui.login("fac").get("/ui/fleet")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    html = page.text
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert ui.client.get("/ui/static/app.css").status_code == 200
    script = ui.client.get("/ui/static/app.js")
    assert script.status_code == 200
    assert "fetch(" in script.text
    assert "/ui/" not in ui.client.get("/openapi.json").text  # the UI stays out of the API


def test_a_technician_ticks_the_checklist_and_the_maintenance_page_shows_the_plans(
    ui: Ui,
) -> None:
    asset = ui.api("GET", "/api/v1/assets?code=pump-01", ui.admin)["items"][0]
    order = ui.api(
        "POST",
        "/api/v1/work-orders",
        ui.admin,
        json={
            "asset_id": asset["id"],
            "title": "Grease",
            "work_type": "preventive",
            "checklist": [
                {"item": "lock out", "required": True},
                {"item": "bearing temperature", "kind": "measurement", "unit": "°C", "max": 70},
                {"item": "no leaks", "kind": "pass_fail"},
            ],
        },
    )
    tech = ui.login("tech")
    page = f"/ui/work-orders/{order['id']}"

    def post(action: str, **fields: str) -> httpx.Response:
        html = tech.get(page).text
        etag = re.search(r'name="etag" value="([^"]+)"', html)
        assert etag
        data = {"csrf": csrf_of(html), "etag": etag.group(1).replace("&#34;", '"'), **fields}
        response = tech.post(f"{page}/{action}", data=data, headers=SAME_ORIGIN)
        assert response.status_code == 303
        return response

    post("transition", to="assigned")
    post("transition", to="in_progress")
    assert "Save checklist" in tech.get(page).text
    post("checklist", done_1="on", value_1="82.5", result_2="pass")
    saved = ui.api("GET", f"/api/v1/work-orders/{order['id']}", ui.admin)["checklist"]
    assert [s["done"] for s in saved] == [False, True, False]
    assert (saved[1]["value"], saved[1]["flagged"], saved[2]["result"]) == (82.5, True, "pass")
    assert "out of limits" in tech.get(page).text
    # The flagged measurement opens one follow-up corrective order (a second click: the same).
    token = csrf_of(tech.get(page).text)
    for _ in range(2):
        opened = tech.post(
            f"{page}/follow-up", data={"csrf": token, "step": "1"}, headers=SAME_ORIGIN
        )
        assert opened.status_code == 303
    follow = [
        o
        for o in ui.api("GET", "/api/v1/work-orders", ui.admin)["items"]
        if o["title"].startswith("Follow-up: bearing temperature (82.5 °C)")
    ]
    assert len(follow) == 1
    assert opened.headers["location"] == f"/ui/work-orders/{follow[0]['id']}"
    assert follow[0]["work_type"] == "corrective"
    tech.post(f"{page}/follow-up", data={"csrf": token, "step": "0"}, headers=SAME_ORIGIN)
    assert "step 1 is not flagged" in tech.get(page).text
    # The required step is open: completing is refused, with the reason on the page.
    post("transition", to="completed", resolution="fixed")
    assert "required checklist steps are not done: lock out" in tech.get(page).text
    assert ui.api("GET", f"/api/v1/work-orders/{order['id']}", ui.admin)["state"] == "in_progress"
    post("checklist", done_0="on", done_1="on", value_1="61", result_2="pass")
    post("transition", to="completed", resolution="fixed")
    assert ui.api("GET", f"/api/v1/work-orders/{order['id']}", ui.admin)["state"] == "completed"

    ui.api(
        "POST",
        "/api/v1/pm-plans",
        ui.admin,
        json={
            "site_id": asset["site_id"],
            "asset_type": "pump",
            "title": "Inspect seals",
            "every": 1,
            "unit": "weeks",
        },
    )
    maintenance = tech.get("/ui/maintenance")
    assert maintenance.status_code == 200
    assert "Inspect seals" in maintenance.text
    assert 'data-asset="{}"'.format(asset["id"]) in maintenance.text  # due within 30 days


def test_facilities_create_a_plan_in_the_dashboard(ui: Ui) -> None:
    asset = ui.api("GET", "/api/v1/assets?code=pump-01", ui.admin)["items"][0]
    dana = ui.login("fac")
    html = dana.get("/ui/maintenance").text
    assert "New plan" in html
    form = {
        "csrf": csrf_of(html),
        "title": "Grease the bearings",
        "site_id": str(asset["site_id"]),
        "applies_to": "type:pump",
        "trigger": "both",
        "every": "2",
        "unit": "weeks",
        "anchor": "completion",
        "meter_every": "500",
        "meter_name": "running_hours",
        "lead_days": "3",
        "estimated_minutes": "25",
        "checklist": "\n".join(
            ["! isolate and lock out", "grease both bearings", "bearing temperature | °C | | 70"]
        ),
    }
    response = dana.post("/ui/pm-plans", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 303
    (plan,) = ui.api("GET", "/api/v1/pm-plans", ui.admin)["items"]
    assert (plan["asset_type"], plan["every"], plan["unit"], plan["meter_every"]) == (
        "pump",
        2,
        "weeks",
        500.0,
    )
    steps = plan["checklist"]
    assert [(s["item"], s["required"], s["kind"]) for s in steps] == [
        ("isolate and lock out", True, "check"),
        ("grease both bearings", False, "check"),
        ("bearing temperature", False, "measurement"),
    ]
    assert (steps[2]["unit"], steps[2]["min"], steps[2]["max"]) == ("°C", None, 70.0)
    page = dana.get("/ui/maintenance").text
    assert "Plan &#39;Grease the bearings&#39; created." in page
    assert 'class="table calendar"' in page
    # Bad input comes back as a message, not a 500; technicians may not plan.
    bad = dana.post("/ui/pm-plans", data={**form, "every": "often"}, headers=SAME_ORIGIN)
    assert bad.status_code == 303
    assert "is not a number" in dana.get("/ui/maintenance").text
    tech = ui.login("tech")
    refused = tech.post(
        "/ui/pm-plans",
        data={**form, "csrf": csrf_of(tech.get("/ui/maintenance").text)},
        headers=SAME_ORIGIN,
    )
    assert refused.status_code == 403


def test_the_fleet_fragment_is_shared_by_viewers_and_follows_changes(ui: Ui) -> None:
    poll = {"X-Fragment": "1"}
    facilities, technician = ui.login("fac"), ui.login("tech")
    first = facilities.get("/ui/fleet", headers=poll)
    second = technician.get("/ui/fleet", headers=poll)  # from the first one's render
    assert first.status_code == second.status_code == 200
    assert second.text == first.text
    assert "pump-01" in second.text
    assert second.headers["etag"] != first.headers["etag"]  # each viewer keeps their own tag
    unchanged = technician.get(
        "/ui/fleet", headers={**poll, "If-None-Match": second.headers["etag"]}
    )
    assert unchanged.status_code == 304
    site_id = ui.api("GET", "/api/v1/sites", ui.admin)["items"][0]["id"]
    body = {"site_id": site_id, "code": "belt-03", "name": "Belt", "asset_type": "conveyor"}
    ui.api("POST", "/api/v1/assets", ui.admin, json=body)
    after = technician.get("/ui/fleet", headers={**poll, "If-None-Match": second.headers["etag"]})
    assert after.status_code == 200
    assert "belt-03" in after.text
