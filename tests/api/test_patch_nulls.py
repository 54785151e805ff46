"""Explicit nulls on every PATCH route: 422 where the column is NOT NULL, "clear" where nullable.

Issue 15, defect 1: `{"checklist": null}` was stored and then every read of the order answered
500 (its list pages too, for every role); nulls on NOT NULL columns answered 500.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from api import migrate
from api.db import make_engine
from api.main import create_app
from api.routetable import route_table
from api.settings import Settings
from tests.api.helpers import NO_INFLUX, Api

WO = "/api/v1/work-orders"
# Every PATCH route with the fields that refuse null and those where null clears the value.
REFUSED: dict[str, tuple[str, ...]] = {
    "/api/v1/work-orders/{order_id}": (
        "title",
        "description",
        "priority",
        "checklist",
        "parts_used",
        "labour_minutes",
        "downtime_minutes",
        "note",
    ),
    "/api/v1/assets/{asset_id}": (
        "name",
        "asset_type",
        "criticality",
        "location",
        "make",
        "model",
        "serial",
    ),
    "/api/v1/sites/{site_id}": ("name", "timezone"),
    "/api/v1/users/{user_id}": ("display_name", "role", "password", "active"),
    "/api/v1/pm-plans/{plan_id}": (
        "title",
        "description",
        "priority",
        "estimated_minutes",
        "checklist",
        "lead_days",
        "meter_lead",
        "active",
    ),
}
CLEARED: dict[str, tuple[str, ...]] = {
    "/api/v1/work-orders/{order_id}": ("due_at",),
    "/api/v1/assets/{asset_id}": ("area_id", "installed_on"),
}


def test_the_table_names_every_patch_route_and_field() -> None:
    """A new PATCH route or field cannot escape this test: the table must list it."""
    app = create_app(Settings(database_url="sqlite://", influx=NO_INFLUX))
    patch_routes = [e for e in route_table(app) if "PATCH" in e.methods]
    assert {e.path for e in patch_routes} == set(REFUSED)
    for entry in patch_routes:
        assert isinstance(entry.route, APIRoute)
        body = entry.route.body_field
        assert body is not None, entry.path
        model: Any = body.field_info.annotation
        fields = set(model.model_fields)
        listed = set(REFUSED.get(entry.path, ())) | set(CLEARED.get(entry.path, ()))
        assert fields == listed, entry.path


def _targets(api: Api, asset: dict[str, Any]) -> dict[str, str]:
    order = api.ok("facilities", "POST", WO, json={"asset_id": asset["id"], "title": "Fix"})
    plan_body = {"site_id": asset["site_id"], "asset_id": asset["id"], "title": "PM"}
    plan = api.ok(
        "facilities", "POST", "/api/v1/pm-plans", json={**plan_body, "every": 1, "unit": "days"}
    )
    return {
        "/api/v1/work-orders/{order_id}": f"{WO}/{order['id']}",
        "/api/v1/assets/{asset_id}": f"/api/v1/assets/{asset['id']}",
        "/api/v1/sites/{site_id}": f"/api/v1/sites/{asset['site_id']}",
        "/api/v1/users/{user_id}": f"/api/v1/users/{api.user_ids['technician2']}",
        "/api/v1/pm-plans/{plan_id}": f"/api/v1/pm-plans/{plan['id']}",
    }


def test_null_on_a_not_null_field_is_422_and_changes_nothing(
    api: Api, asset: dict[str, Any]
) -> None:
    targets = _targets(api, asset)
    for template, fields in REFUSED.items():
        path = targets[template]
        before = api.ok("admin", "GET", path)
        for name in fields:
            response = api.call("admin", "PATCH", path, json={name: None})
            assert response.status_code == 422, (path, name, response.text)
            problem = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert problem["errors"][0]["where"] == f"body.{name}", problem
        after = api.ok("admin", "GET", path)
        for volatile in ("updated_at", "version"):
            before.pop(volatile, None)
            after.pop(volatile, None)
        assert after == before, path


def test_null_clears_a_nullable_field(api: Api, asset: dict[str, Any]) -> None:
    targets = _targets(api, asset)
    area = api.ok("admin", "POST", "/api/v1/areas", json={"site_id": asset["site_id"], "name": "A"})
    path = targets["/api/v1/assets/{asset_id}"]
    api.ok("admin", "PATCH", path, json={"area_id": area["id"], "installed_on": "2024-05-01"})
    cleared = api.ok("admin", "PATCH", path, json={"area_id": None, "installed_on": None})
    assert cleared["area_id"] is None
    assert cleared["installed_on"] is None
    order_path = targets["/api/v1/work-orders/{order_id}"]
    api.ok("facilities", "PATCH", order_path, json={"due_at": "2030-01-01T00:00:00Z"})
    assert api.ok("facilities", "PATCH", order_path, json={"due_at": None})["due_at"] is None


def test_an_order_poisoned_before_the_fix_stays_readable(
    api: Api, asset: dict[str, Any], database_url: str
) -> None:
    """Rows holding JSON null (written by the old PATCH) read as empty lists, not 500."""
    order = api.ok("facilities", "POST", WO, json={"asset_id": asset["id"], "title": "Fix"})
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE work_orders SET checklist = 'null', parts_used = 'null', "
                    "notes = 'null' WHERE id = :id"
                ),
                {"id": order["id"]},
            )
    finally:
        engine.dispose()
    for role in ("admin", "facilities", "technician"):
        got = api.ok(role, "GET", f"{WO}/{order['id']}")
        assert (got["checklist"], got["parts_used"], got["notes"]) == ([], [], [])
        page = api.ok(role, "GET", WO)
        assert order["id"] in [item["id"] for item in page["items"]]


@pytest.mark.parametrize("field", ["checklist", "parts_used"])
def test_a_null_list_never_poisons_the_technicians_list(
    api: Api, asset: dict[str, Any], field: str
) -> None:
    order = api.ok("facilities", "POST", WO, json={"asset_id": asset["id"], "title": "Fix"})
    assert (
        api.call("facilities", "PATCH", f"{WO}/{order['id']}", json={field: None}).status_code
        == 422
    )
    assert api.call("technician", "GET", WO).status_code == 200
    assert api.call("technician", "GET", f"{WO}/{order['id']}").status_code == 200


def test_the_migration_repairs_poisoned_orders(
    api: Api, asset: dict[str, Any], database_url: str
) -> None:
    """Migration 0004 turns stored JSON nulls into empty lists (the UI reads the rows too)."""
    order = api.ok("facilities", "POST", WO, json={"asset_id": asset["id"], "title": "Fix"})
    migrate.downgrade(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE work_orders SET checklist = 'null', parts_used = 'null' WHERE id = :id"
                ),
                {"id": order["id"]},
            )
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT CAST(checklist AS TEXT), CAST(parts_used AS TEXT), "
                    "CAST(notes AS TEXT) FROM work_orders WHERE id = :id"
                ),
                {"id": order["id"]},
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("[]", "[]", "[]")
