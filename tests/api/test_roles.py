"""Role × route matrix: every route of the app, UI pages included, against docs/api.md's table.

The expected access is the table under "Who may call what" in docs/api.md (the one place it is
written down). The routes come from the app's own route table, so a new route the table lacks
fails the test, and so does a route whose declared roles differ from the table. Then every
route is called as every role, with no credentials and with a bad one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from api.deps import declared_roles
from api.main import create_app
from api.routetable import route_table
from api.settings import Settings
from api.web.session import COOKIE, csrf_token
from tests.api.helpers import NO_INFLUX, ROLES, Api

# SQLite only (who may call what is decided before any SQL).
pytestmark = pytest.mark.sql_agnostic

DOC = Path(__file__).parents[2] / "docs" / "api.md"
GROUPS: dict[str, frozenset[str] | None] = {
    "public": None,
    "any": frozenset(ROLES),
    "readers": frozenset({"admin", "facilities", "technician", "service"}),
    "staff": frozenset({"admin", "facilities"}),
    "crew": frozenset({"admin", "facilities", "technician"}),
}
# Ids that do not exist: allowed roles get 404/422 instead of changing real data.
PARAMS = dict.fromkeys(
    ("site_id", "asset_id", "sensor_id", "alert_id", "order_id", "user_id", "token_id"), 999999
) | {
    "webhook_id": 999999,
    "plan_id": 999999,
    "meter_id": 999999,
    "rule_id": 999999,
    "channel_id": 999999,
    "notification_id": 999999,
    "shift_id": 999999,
    "override_id": 999999,
    "request_id": 999999,
    "action": "acknowledge-alert",
    "token": "1.nope",
    "name": "running_hours",
    "path": "app.css",
}
LOGIN_ROUTES = {"/api/v1/auth/login", "/ui/login"}


def documented() -> dict[tuple[str, str], frozenset[str] | None]:
    """The access table of docs/api.md: (method, route) → roles (None = public)."""
    text = DOC.read_text().split("## Who may call what", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, str], frozenset[str] | None] = {}
    for method, route, cell in re.findall(r"^\| (\w+) \| `([^`]+)` \| ([^|]+) \|$", text, re.M):
        who = cell.strip()
        roles = GROUPS[who] if who in GROUPS else frozenset(r.strip() for r in who.split(","))
        assert roles is None or roles <= set(ROLES), who
        assert (method, route) not in table, (method, route)
        table[(method, route)] = roles
    return table


EXPECTED = documented()


def _app_routes() -> dict[tuple[str, str], Any]:
    app = create_app(Settings(database_url="sqlite://", influx=NO_INFLUX))
    found: dict[tuple[str, str], Any] = {}
    for entry in route_table(app):
        if isinstance(entry.route, Mount):
            found[("GET", f"{entry.path}/{{path}}")] = entry.route
        for method in entry.methods - {"HEAD"}:
            found[(method, entry.path)] = entry.route
    return found


def test_table_covers_every_route_and_matches_declarations() -> None:
    """The app's routes (all of them, UI included) are exactly the table's, with its roles."""
    routes = _app_routes()
    assert set(routes) - set(EXPECTED) == set(), "routes missing from docs/api.md"
    assert set(EXPECTED) - set(routes) == set(), "docs/api.md names routes the app lacks"
    for key, route in routes.items():
        if isinstance(route, APIRoute) and not key[1].startswith("/ui") and key[1] != "/":
            assert declared_roles(route) == EXPECTED[key], key


def _to_login(response: httpx.Response) -> bool:
    """The UI's "log in first" answer (a logout's own redirect has no `next`)."""
    location = response.headers.get("location", "")
    return response.status_code == 303 and location.startswith("/ui/login?next=")


def _ui_call(api: Api, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Cookie": f"{COOKIE}={token}"} if token else {}
    data = {"csrf": csrf_token(token)} if token and method == "POST" else None
    url = f"{api.client.base_url}{path}"
    return httpx.request(method, url, headers=headers, data=data, timeout=30)


def _check_ui(api: Api, method: str, template: str, allowed: frozenset[str] | None) -> list[Any]:
    path = template.format(**PARAMS)
    failures: list[Any] = []
    anonymous = _ui_call(api, method, path, None)
    if allowed is None:
        if anonymous.status_code == 403 or _to_login(anonymous):
            failures.append((method, template, None, anonymous.status_code))
        return failures
    if not _to_login(anonymous):
        failures.append((method, template, None, anonymous.status_code, "should go to login"))
    if not _to_login(_ui_call(api, method, path, "nope")):
        failures.append((method, template, "bad cookie", "should go to login"))
    for role in ROLES:
        response = _ui_call(api, method, path, api.tokens[role])
        served = response.status_code != 403 and not _to_login(response)
        if served != (role in allowed):
            failures.append((method, template, role, response.status_code))
    return failures


def _check_api(api: Api, method: str, template: str, allowed: frozenset[str] | None) -> list[Any]:
    path = template.format(**PARAMS)
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
    failures: list[Any] = []
    anonymous = api.call(None, method, path, **kwargs)
    if allowed is None:
        refused = anonymous.status_code == 403 or (
            anonymous.status_code == 401 and template not in LOGIN_ROUTES
        )
        if refused:
            failures.append((method, template, None, anonymous.status_code))
        return failures
    if anonymous.status_code != 401 or anonymous.headers.get("WWW-Authenticate") != "Bearer":
        failures.append((method, template, None, anonymous.status_code))
    bad = api.call(None, method, path, headers={"Authorization": "Bearer nope"}, **kwargs)
    if bad.status_code != 401:
        failures.append((method, template, "bad token", bad.status_code))
    for role in ROLES:
        status = api.call(role, method, path, **kwargs).status_code
        if role in allowed and status in (401, 403):
            failures.append((method, template, role, status, "should be served"))
        if role not in allowed and status != 403:
            failures.append((method, template, role, status, "should be 403"))
    return failures


def test_matrix(api: Api) -> None:
    failures: list[Any] = []
    # Logging out revokes the session's login token: last, so the other calls keep theirs.
    ordered = sorted(EXPECTED.items(), key=lambda item: item[0][1] == "/ui/logout")
    for (method, template), allowed in ordered:
        if template == "/" or template.startswith("/ui"):
            failures += _check_ui(api, method, template, allowed)
        else:
            failures += _check_api(api, method, template, allowed)
    assert failures == []
