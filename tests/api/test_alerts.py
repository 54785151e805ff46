"""Alert upsert (the analytics contract), the ISA-18.2 lifecycle, outcomes and KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.db import make_engine, make_sessionmaker
from api.services.sweeps import sweep
from tests.api.helpers import Api, alert_body

ALERTS = "/api/v1/alerts"


def post(api: Api, **kwargs: Any) -> Any:
    return api.call("service", "POST", ALERTS, json=alert_body("plant-a", "pump-01", **kwargs))


def test_recurrence_updates_one_alert_and_one_work_order(api: Api) -> None:
    first = post(api)
    assert first.status_code == 201
    alert = first.json()
    assert alert["state"] == "active_unacknowledged"
    assert alert["work_order_id"] is not None  # high severity on a high-criticality asset
    again = post(api, detected_at="2026-11-27T07:01:00Z")
    assert again.status_code == 200
    assert again.json()["id"] == alert["id"]
    post(api, state="normal", detected_at="2026-11-27T07:02:00Z")
    third = post(api, detected_at="2026-11-27T07:03:00Z").json()
    assert third["id"] == alert["id"]
    assert third["occurrences"] == 2
    assert third["work_order_id"] == alert["work_order_id"]
    assert api.ok("admin", "GET", ALERTS)["total"] == 1
    order = api.ok("facilities", "GET", f"/api/v1/work-orders/{alert['work_order_id']}")
    assert order["work_type"] == "corrective"
    assert len(order["evidence"]) == 2  # two onsets attached as evidence
    assert order["evidence"][0]["chart_url"].startswith(f"/api/v1/assets/{alert['asset_id']}")
    history = api.ok("facilities", "GET", f"{ALERTS}/{alert['id']}/history")["items"]
    assert [e["event"] for e in history] == ["activated", "returned_to_normal", "activated"]


def test_instrument_problem_routes_to_instrument_work(api: Api) -> None:
    alert = post(api, kind="instrument_stuck", failure_mode="sensor_stuck").json()
    order = api.ok("facilities", "GET", f"/api/v1/work-orders/{alert['work_order_id']}")
    assert order["work_type"] == "instrument"


def test_low_severity_stays_an_alert(api: Api) -> None:
    alert = post(api, severity="low").json()  # 1 + 3 (high criticality) < 5
    assert alert["work_order_id"] is None


def test_lifecycle(api: Api) -> None:
    alert = post(api).json()
    path = f"{ALERTS}/{alert['id']}"
    ack = api.ok("technician", "POST", f"{path}/acknowledge")
    assert ack["state"] == "active_acknowledged"
    assert ack["acknowledged_by"] == "user:technician"
    again = api.call("technician", "POST", f"{path}/acknowledge")
    assert again.status_code == 409
    assert again.json()["type"].endswith("illegal-transition")
    cleared = post(api, state="normal", detected_at="2026-11-27T07:05:00Z").json()
    assert cleared["state"] == "normal"
    # Unacknowledged return to normal needs an acknowledgement to clear.
    post(api, detected_at="2026-11-27T07:06:00Z")
    rtn = post(api, state="normal", detected_at="2026-11-27T07:07:00Z").json()
    assert rtn["state"] == "rtn_unacknowledged"
    assert api.ok("facilities", "POST", f"{path}/acknowledge")["state"] == "normal"
    # Out of service and suppression keep tracking the condition; leaving re-alarms.
    oos = api.ok(
        "facilities",
        "POST",
        f"{path}/actions",
        json={"action": "remove_from_service", "reason": "pump being replaced"},
    )
    assert oos["state"] == "out_of_service"
    still = post(api, detected_at="2026-11-27T07:08:00Z").json()
    assert still["state"] == "out_of_service"
    assert still["condition_active"]
    back = api.ok("facilities", "POST", f"{path}/actions", json={"action": "return_to_service"})
    assert back["state"] == "active_unacknowledged"
    no_reason = api.call("facilities", "POST", f"{path}/actions", json={"action": "suppress"})
    assert no_reason.status_code == 422
    tech = api.call(
        "technician", "POST", f"{path}/actions", json={"action": "suppress", "reason": "x"}
    )
    assert tech.status_code == 403
    history = api.ok("admin", "GET", f"{path}/history?limit=100")["items"]
    oos_event = next(e for e in history if e["event"] == "remove_from_service")
    assert oos_event["actor"] == "user:facilities"
    assert oos_event["reason"] == "pump being replaced"


def test_shelving_expires_and_realarms(api: Api) -> None:
    alert = post(api).json()
    path = f"{ALERTS}/{alert['id']}"
    until = datetime.now(UTC) + timedelta(minutes=30)
    shelved = api.ok(
        "facilities",
        "POST",
        f"{path}/actions",
        json={"action": "shelve", "reason": "known, parts ordered", "until": until.isoformat()},
    )
    assert shelved["state"] == "shelved"
    engine = make_engine(api.settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        assert sweep(sessions, api.settings.policy, datetime.now(UTC))[0] == []
        unshelved, _ = sweep(sessions, api.settings.policy, until + timedelta(seconds=1))
        assert unshelved == [alert["id"]]
    finally:
        engine.dispose()
    assert api.ok("facilities", "GET", path)["state"] == "active_unacknowledged"


def test_outcomes_and_kpis(api: Api, site: dict[str, Any]) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    alert = post(api).json()
    order_path = f"/api/v1/work-orders/{alert['work_order_id']}"
    tech = api.user_ids["technician"]
    for step in (
        {"to": "assigned", "assignee_id": tech},
        {"to": "in_progress"},
        {"to": "completed", "resolution": "no_fault_found"},
    ):
        api.ok("facilities", "POST", f"{order_path}/transitions", json=step)
    outcomes = api.ok("service", "GET", f"{ALERTS}/outcomes", params={"since": since.isoformat()})
    # The completion time (the analytics service fits a repaired asset's baseline after it).
    completed = datetime.fromisoformat(outcomes[0].pop("completed_at"))
    assert completed.tzinfo is not None
    assert completed >= since
    assert outcomes == [
        {
            "alert_id": alert["id"],
            "site": "plant-a",
            "asset": "pump-01",
            "kind": "equipment_anomaly",
            "failure_mode": "bearing_wear",
            "opened_at": "2026-11-27T07:00:00Z",
            "cleared_at": None,
            "outcome": "no_fault_found",
            "work_order_id": alert["work_order_id"],
        }
    ]
    # A chattering alert: three onsets within a minute.
    for second in range(6):
        state = "active" if second % 2 == 0 else "normal"
        post(api, failure_mode="chatter", state=state, detected_at=f"2026-11-27T08:00:0{second}Z")
    kpis = api.ok(
        "facilities",
        "GET",
        f"{ALERTS}/kpis",
        params={
            "site_id": site["id"],
            "start": "2026-11-27T00:00:00Z",
            "end": "2026-11-28T00:00:00Z",
        },
    )
    assert kpis["activations"] == 4
    assert kpis["per_day"] == 4.0
    assert kpis["per_10_minutes_max"] == 3
    assert kpis["flood_periods"] == []
    assert len(kpis["chattering_alerts"]) == 1
