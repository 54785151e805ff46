"""Work orders opened by alerts are assigned by policy to the least-loaded technician."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import (
    Api,
    alert_body,
    create_asset,
    create_site,
    make_settings,
    serve,
    setup_roles,
)


@pytest.fixture
def auto_api(database_url: str) -> Iterator[Api]:
    """An app whose policy assigns new orders; site plant-a with its users, no assets yet."""
    settings = make_settings(database_url, auto_assign="least_loaded")
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, settings)
        site = create_site(harness, "plant-a")
        setup_roles(harness, site["id"])
        harness.user_ids["site"] = site["id"]
        yield harness


def _order_of_alert(api: Api, asset: str) -> dict[str, object]:
    alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", asset))
    assert alert["work_order_id"] is not None
    order: dict[str, object] = api.ok(
        "admin", "GET", f"/api/v1/work-orders/{alert['work_order_id']}"
    )
    return order


def test_orders_go_to_the_least_loaded_technician_in_turn(auto_api: Api) -> None:
    site_id = auto_api.user_ids["site"]
    for code in ("pump-01", "pump-02", "pump-03"):
        create_asset(auto_api, site_id, code)
    first = _order_of_alert(auto_api, "pump-01")
    second = _order_of_alert(auto_api, "pump-02")
    third = _order_of_alert(auto_api, "pump-03")
    technicians = {auto_api.user_ids["technician"], auto_api.user_ids["technician2"]}
    assert first["state"] == second["state"] == third["state"] == "assigned"
    # Both technicians were free: the older account gets the first, the other the second,
    # and the third goes back to the first (1 order each before it).
    assert {first["assignee_id"], second["assignee_id"]} == technicians
    assert first["assignee_id"] == auto_api.user_ids["technician"]
    assert third["assignee_id"] == first["assignee_id"]
    # The assignee sees it as theirs and may start it at once.
    path = f"/api/v1/work-orders/{first['id']}"
    tag = auto_api.call("technician", "GET", path).headers["ETag"]
    started = auto_api.call(
        "technician",
        "POST",
        f"{path}/transitions",
        json={"to": "in_progress"},
        headers={"If-Match": tag},
    )
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "in_progress"
    audit = auto_api.ok("admin", "GET", f"/api/v1/audit?entity=work_order&entity_id={first['id']}")
    assert any(e["action"] == "assign" and e["changes"]["by"] == "policy" for e in audit["items"])


def test_deactivated_technicians_get_nothing_and_no_technician_leaves_it_open(
    auto_api: Api,
) -> None:
    site_id = auto_api.user_ids["site"]
    create_asset(auto_api, site_id, "fan-01")
    create_asset(auto_api, site_id, "fan-02")
    auto_api.ok("admin", "PATCH", f"/api/v1/users/{auto_api.user_ids['technician']}",
                json={"active": False})  # fmt: skip
    order = _order_of_alert(auto_api, "fan-01")
    assert order["assignee_id"] == auto_api.user_ids["technician2"]
    auto_api.ok("admin", "PATCH", f"/api/v1/users/{auto_api.user_ids['technician2']}",
                json={"active": False})  # fmt: skip
    unassigned = _order_of_alert(auto_api, "fan-02")
    assert unassigned["state"] == "open"
    assert unassigned["assignee_id"] is None
