"""Every UI page shows work orders by the API's own rule (issue 15, defect 5).

`/ui/board` showed technicians other technicians' work orders (title, asset, assignee), which
`GET /api/v1/work-orders` never does. The browser session cookie holds a login token, so the
tests browse with the tokens the API fixture logged in with.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from api.web.session import COOKIE
from tests.api.helpers import Api

# SQLite only (the same listing rule as the API's lists, tested on both there).
pytestmark = pytest.mark.sql_agnostic

WO = "/api/v1/work-orders"
CREW = ("admin", "facilities", "technician", "technician2")
CLOSED = ("verified", "cancelled")


def _browse(api: Api, role: str, path: str) -> httpx.Response:
    cookies = {COOKIE: api.tokens[role]}
    return httpx.get(f"{api.client.base_url}{path}", cookies=cookies, timeout=30)


def _orders(api: Api, asset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Orders assigned to each technician, one unassigned, and a cancelled one."""
    made = {}
    for key, assignee in (("mine", "technician"), ("theirs", "technician2"), ("free", None)):
        order = api.ok(
            "facilities", "POST", WO, json={"asset_id": asset["id"], "title": f"job-{key}"}
        )
        if assignee is not None:
            body = {"to": "assigned", "assignee_id": api.user_ids[assignee]}
            order = api.ok("facilities", "POST", f"{WO}/{order['id']}/transitions", json=body)
        made[key] = order
    closed = api.ok("facilities", "POST", WO, json={"asset_id": asset["id"], "title": "job-x"})
    api.ok("facilities", "POST", f"{WO}/{closed['id']}/transitions", json={"to": "cancelled"})
    return made


def test_the_board_shows_what_the_api_lists(api: Api, asset: dict[str, Any]) -> None:
    made = _orders(api, asset)
    for role in CREW:
        page = _browse(api, role, "/ui/board")
        assert page.status_code == 200, (role, page.text[:300])
        on_board = {int(i) for i in re.findall(r'href="/ui/work-orders/(\d+)"', page.text)}
        listed = api.ok(role, "GET", f"{WO}?limit=200")["items"]
        assert on_board == {o["id"] for o in listed if o["state"] not in CLOSED}, role
    technician_board = _browse(api, "technician", "/ui/board").text
    assert "job-mine" in technician_board
    assert "job-free" in technician_board
    assert "job-theirs" not in technician_board
    assert f'href="/ui/work-orders/{made["theirs"]["id"]}"' not in technician_board


def test_technicians_see_the_fleet_read_only(api: Api, asset: dict[str, Any]) -> None:
    page = _browse(api, "technician", "/ui/fleet")
    assert page.status_code == 200
    assert asset["code"] in page.text
    assert "<form" not in page.text.split("<main", 1)[-1]  # no action on the page itself
    assert _browse(api, "technician", "/ui/kpis").status_code == 403
