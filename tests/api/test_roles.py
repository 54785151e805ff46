"""Role × route matrix: every route of the app refuses the roles it should and serves the rest.

The expected table is written out here, not read from the app; the test fails if the app has a
route the table lacks (so no route escapes the matrix) or declares other roles than the table.
"""

from __future__ import annotations

from typing import Any

from api.main import create_app
from api.settings import Settings
from tests.api.helpers import NO_INFLUX, ROLES, Api

R = frozenset({"admin", "facilities", "technician", "service"})  # readers
STAFF = frozenset({"admin", "facilities"})
CREW = frozenset({"admin", "facilities", "technician"})
SERVICE = frozenset({"admin", "service"})
ADMIN = frozenset({"admin"})
GATEWAY = frozenset({"gateway"})
ANYONE = frozenset(ROLES)
PUBLIC: frozenset[str] | None = None

V1 = "/api/v1"
EXPECTED: dict[tuple[str, str], frozenset[str] | None] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("GET", f"{V1}/sites"): R,
    ("POST", f"{V1}/sites"): STAFF,
    ("GET", f"{V1}/sites/{{site_id}}"): R,
    ("PATCH", f"{V1}/sites/{{site_id}}"): STAFF,
    ("DELETE", f"{V1}/sites/{{site_id}}"): ADMIN,
    ("GET", f"{V1}/areas"): R,
    ("POST", f"{V1}/areas"): STAFF,
    ("GET", f"{V1}/assets"): R,
    ("POST", f"{V1}/assets"): STAFF,
    ("GET", f"{V1}/assets/{{asset_id}}"): R,
    ("PATCH", f"{V1}/assets/{{asset_id}}"): STAFF,
    ("DELETE", f"{V1}/assets/{{asset_id}}"): ADMIN,
    ("GET", f"{V1}/assets/{{asset_id}}/sensors"): R,
    ("POST", f"{V1}/assets/{{asset_id}}/sensors"): STAFF,
    ("DELETE", f"{V1}/assets/{{asset_id}}/sensors/{{sensor_id}}"): STAFF,
    ("GET", f"{V1}/assets/{{asset_id}}/reliability"): R,
    ("GET", f"{V1}/assets/{{asset_id}}/readings"): R,
    ("POST", f"{V1}/readings"): GATEWAY,
    ("POST", f"{V1}/alerts"): SERVICE,
    ("POST", f"{V1}/asset-status"): frozenset({"service"}),
    ("GET", f"{V1}/asset-status"): CREW,
    ("GET", f"{V1}/alerts"): R,
    ("GET", f"{V1}/alerts/outcomes"): SERVICE,
    ("GET", f"{V1}/alerts/kpis"): STAFF,
    ("GET", f"{V1}/alerts/{{alert_id}}"): R,
    ("GET", f"{V1}/alerts/{{alert_id}}/history"): R,
    ("POST", f"{V1}/alerts/{{alert_id}}/acknowledge"): CREW,
    ("POST", f"{V1}/alerts/{{alert_id}}/actions"): STAFF,
    ("GET", f"{V1}/work-orders"): CREW,
    ("POST", f"{V1}/work-orders"): CREW,
    ("GET", f"{V1}/work-orders/{{order_id}}"): CREW,
    ("PATCH", f"{V1}/work-orders/{{order_id}}"): CREW,
    ("POST", f"{V1}/work-orders/{{order_id}}/transitions"): CREW,
    ("GET", f"{V1}/users"): ADMIN,
    ("POST", f"{V1}/users"): ADMIN,
    ("GET", f"{V1}/users/me"): ANYONE,
    ("GET", f"{V1}/users/{{user_id}}"): ADMIN,
    ("PATCH", f"{V1}/users/{{user_id}}"): ADMIN,
    ("GET", f"{V1}/audit"): ADMIN,
    ("GET", f"{V1}/tokens"): ADMIN,
    ("POST", f"{V1}/tokens"): ADMIN,
    ("DELETE", f"{V1}/tokens/{{token_id}}"): ADMIN,
    ("GET", f"{V1}/webhooks"): ADMIN,
    ("POST", f"{V1}/webhooks"): ADMIN,
    ("GET", f"{V1}/webhooks/{{webhook_id}}"): ADMIN,
    ("DELETE", f"{V1}/webhooks/{{webhook_id}}"): ADMIN,
    ("GET", f"{V1}/webhooks/{{webhook_id}}/deliveries"): ADMIN,
    ("GET", f"{V1}/reports/alarm-kpis"): STAFF,
    ("GET", f"{V1}/reports/reliability"): STAFF,
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def test_table_covers_every_route_and_matches_declarations() -> None:
    """The app's operations (from its OpenAPI document) are exactly the table's, same roles."""
    schema = create_app(Settings(database_url="sqlite://", influx=NO_INFLUX)).openapi()
    declared: dict[tuple[str, str], frozenset[str] | None] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                roles = operation.get("x-roles")
                declared[(method.upper(), path)] = None if roles is None else frozenset(roles)
    assert set(declared) == set(EXPECTED), "route table and app differ"
    for key, roles in declared.items():
        assert roles == EXPECTED[key], key


def test_matrix(api: Api) -> None:
    # Ids that do not exist: allowed roles get 404/422 instead of deleting real data.
    params = {
        "site_id": 999999,
        "asset_id": 999999,
        "sensor_id": 999999,
        "alert_id": 999999,
        "order_id": 999999,
        "user_id": 999999,
        "token_id": 999999,
        "webhook_id": 999999,
    }
    failures: list[Any] = []
    for (method, template), allowed in EXPECTED.items():
        path = template.format(**params)
        kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
        anonymous = api.call(None, method, path, **kwargs)
        if allowed is None:
            if anonymous.status_code in (401, 403):
                failures.append((method, template, None, anonymous.status_code))
            continue
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
    assert failures == []
