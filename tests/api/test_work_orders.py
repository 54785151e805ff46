"""Work orders: the state machine, ETag/If-Match, idempotent creates, technicians' scope,
post-repair verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.db import make_engine, make_sessionmaker
from api.services.sweeps import sweep
from api.services.work_orders import TRANSITIONS
from tests.api.helpers import Api, alert_body

WO = "/api/v1/work-orders"
# A path through the machine to each state, as (target, extra body) steps.
PATHS: dict[str, list[dict[str, Any]]] = {
    "open": [],
    "assigned": [{"to": "assigned"}],
    "in_progress": [{"to": "assigned"}, {"to": "in_progress"}],
    "on_hold": [{"to": "assigned"}, {"to": "in_progress"}, {"to": "on_hold"}],
    "completed": [
        {"to": "assigned"},
        {"to": "in_progress"},
        {"to": "completed", "resolution": "fixed"},
    ],
    "verified": [
        {"to": "assigned"},
        {"to": "in_progress"},
        {"to": "completed", "resolution": "fixed"},
        {"to": "verified"},
    ],
    "reopened": [
        {"to": "assigned"},
        {"to": "in_progress"},
        {"to": "completed", "resolution": "fixed"},
        {"to": "reopened"},
    ],
    "cancelled": [{"to": "cancelled"}],
}


def create_order(api: Api, asset_id: int, role: str = "facilities", **fields: Any) -> Any:
    return api.ok(role, "POST", WO, json={"asset_id": asset_id, "title": "Fix it", **fields})


def drive(api: Api, order_id: int, steps: list[dict[str, Any]]) -> Any:
    result = None
    for step in steps:
        body = {**step}
        if body["to"] == "assigned":
            body["assignee_id"] = api.user_ids["technician"]
        result = api.ok("facilities", "POST", f"{WO}/{order_id}/transitions", json=body)
    return result


def test_every_illegal_transition_is_409(api: Api, asset: dict[str, Any]) -> None:
    states = list(TRANSITIONS)
    for state, steps in PATHS.items():
        order = create_order(api, asset["id"])
        drive(api, order["id"], steps)
        assert api.ok("admin", "GET", f"{WO}/{order['id']}")["state"] == state
        for target in states:
            if target in TRANSITIONS[state]:
                continue
            body: dict[str, Any] = {"to": target}
            if target == "completed":
                body["resolution"] = "fixed"
            response = api.call("admin", "POST", f"{WO}/{order['id']}/transitions", json=body)
            assert response.status_code == 409, (state, target, response.text)
            problem = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert problem["status"] == 409
            assert problem["allowed"] == sorted(TRANSITIONS[state])
    # The `requested` state is retired: a technician's own order opens like anyone's (people
    # who need an approval file a work request).
    own = create_order(api, asset["id"], role="technician")
    assert own["state"] == "open"


def test_if_match(api: Api, asset: dict[str, Any]) -> None:
    order = create_order(api, asset["id"])
    first = api.call("facilities", "GET", f"{WO}/{order['id']}")
    tag = first.headers["ETag"]
    ok = api.call(
        "facilities",
        "PATCH",
        f"{WO}/{order['id']}",
        json={"note": "parts ordered"},
        headers={"If-Match": tag},
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] != tag
    stale = api.call(
        "facilities",
        "PATCH",
        f"{WO}/{order['id']}",
        json={"priority": 1},
        headers={"If-Match": tag},
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == ok.headers["ETag"]


def test_idempotent_create(api: Api, asset: dict[str, Any]) -> None:
    body = {"asset_id": asset["id"], "title": "Replace belt", "failure_mode": "belt_wear"}
    key = {"Idempotency-Key": "abc-123"}
    first = api.call("facilities", "POST", WO, json=body, headers=key)
    second = api.call("facilities", "POST", WO, json=body, headers=key)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    other = api.call("facilities", "POST", WO, json={**body, "title": "x"}, headers=key)
    assert other.status_code == 422
    # Without the key the same body is a second order for the same failure mode: refused.
    dup = api.call("facilities", "POST", WO, json=body)
    assert dup.status_code == 409
    assert dup.json()["work_order_id"] == first.json()["id"]


def test_technician_scope(api: Api, asset: dict[str, Any]) -> None:
    mine = create_order(api, asset["id"], title="mine")
    theirs = create_order(api, asset["id"], title="theirs")
    free = create_order(api, asset["id"], title="free")
    api.ok("technician", "POST", f"{WO}/{mine['id']}/transitions", json={"to": "assigned"})
    api.ok(
        "facilities",
        "POST",
        f"{WO}/{theirs['id']}/transitions",
        json={"to": "assigned", "assignee_id": api.user_ids["technician2"]},
    )
    seen = {o["id"] for o in api.ok("technician", "GET", WO)["items"]}
    assert seen == {mine["id"], free["id"]}
    assert api.call("technician", "GET", f"{WO}/{theirs['id']}").status_code == 404
    assert (
        api.call("technician", "PATCH", f"{WO}/{free['id']}", json={"note": "x"}).status_code == 403
    )
    assert (
        api.call(
            "technician", "POST", f"{WO}/{mine['id']}/transitions", json={"to": "cancelled"}
        ).status_code
        == 403
    )
    api.ok("technician", "POST", f"{WO}/{mine['id']}/transitions", json={"to": "in_progress"})
    done = api.ok(
        "technician",
        "PATCH",
        f"{WO}/{mine['id']}",
        json={
            "labour_minutes": 45,
            "parts_used": [{"part": "bearing 6204", "quantity": 2}],
            "checklist": [{"item": "isolate", "done": True}],
            "downtime_minutes": 30,
        },
    )
    assert done["labour_minutes"] == 45


@pytest.mark.parametrize("returns", [False, True])
def test_post_repair_verification(api: Api, asset: dict[str, Any], returns: bool) -> None:
    alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    order_id = alert["work_order_id"]
    drive(api, order_id, PATHS["completed"])
    api.ok(
        "service",
        "POST",
        "/api/v1/alerts",
        json=alert_body("plant-a", "pump-01", state="normal", detected_at="2026-11-27T08:00:00Z"),
    )
    if returns:
        again = api.ok(
            "service",
            "POST",
            "/api/v1/alerts",
            json=alert_body("plant-a", "pump-01", detected_at="2026-11-27T09:00:00Z"),
        )
        assert again["work_order_id"] == order_id
        assert api.ok("admin", "GET", f"{WO}/{order_id}")["state"] == "reopened"
        return
    engine = make_engine(api.settings.database_url)
    try:
        later = datetime.now(UTC) + timedelta(seconds=api.settings.policy.verify_after_s + 1)
        assert sweep(make_sessionmaker(engine), api.settings.policy, later)[1] == [order_id]
    finally:
        engine.dispose()
    order = api.ok("admin", "GET", f"{WO}/{order_id}")
    assert order["state"] == "verified"
    reliability = api.ok("facilities", "GET", f"/api/v1/assets/{asset['id']}/reliability")
    assert reliability["failures"] == 1
    assert reliability["mttr_hours"] is not None
