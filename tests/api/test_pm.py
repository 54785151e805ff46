"""Preventive maintenance: meters, plans that fall due by meter or calendar, exactly one order
each (also under concurrent sweeps), checklists with required steps, the forecast."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_sessionmaker
from api.services.pm import add_interval
from api.services.sweeps import sweep
from tests.api.helpers import Api

PLANS = "/api/v1/pm-plans"
ORDERS = "/api/v1/work-orders"


@pytest.fixture
def sessions(api: Api) -> Iterator[sessionmaker[Session]]:
    """Sessions on the API's database, for running the background sweep by hand."""
    engine = make_engine(api.settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def new_plan(api: Api, asset: dict[str, Any], **fields: Any) -> Any:
    """A plan in the asset's site, made by facilities staff."""
    return api.ok("facilities", "POST", PLANS, json={"site_id": asset["site_id"], **fields})


def sweeps(api: Api, sessions: sessionmaker[Session], now: datetime, count: int = 20) -> None:
    """``count`` sweeps at once (as several API replicas' background tasks would run them)."""
    barrier = threading.Barrier(count)

    def one(_: int) -> None:
        barrier.wait()
        sweep(sessions, api.settings.policy, now)

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))


def read(api: Api, asset_id: int, value: float, at: datetime, **extra: Any) -> Any:
    body = {"value": value, "at": at.isoformat(), **extra}
    return api.call(
        "technician", "POST", f"/api/v1/assets/{asset_id}/meters/running_hours/readings", json=body
    )


def plan_orders(api: Api, plan_id: int) -> list[dict[str, Any]]:
    items = api.ok("admin", "GET", ORDERS, params={"limit": 500})["items"]
    return [o for o in items if o["pm_plan_id"] == plan_id]


def finish(api: Api, order: dict[str, Any], to: str = "completed") -> dict[str, Any]:
    """Take an order through to completed (resolution fixed) or cancelled."""
    path = f"{ORDERS}/{order['id']}/transitions"
    if to == "cancelled":
        return dict(api.ok("facilities", "POST", path, json={"to": "cancelled", "reason": "skip"}))
    steps: list[dict[str, Any]] = [
        {"to": "in_progress"},
        {"to": "completed", "resolution": "fixed"},
    ]
    if order["state"] == "open":
        steps.insert(0, {"to": "assigned", "assignee_id": api.user_ids["technician"]})
    result: dict[str, Any] = {}
    for step in steps:
        result = api.ok("facilities", "POST", path, json=step)
    return result


def test_a_meter_plan_falls_due_at_its_meter_value_with_exactly_one_order(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=10)
    assert read(api, asset["id"], 1000.0, t0).status_code == 201  # the meter's first reading
    plan = new_plan(
        api,
        asset,
        asset_type="pump",
        title="Grease the bearings",
        meter_name="running_hours",
        meter_every=500,
        estimated_minutes=30,
        checklist=[{"item": "lock out", "required": True}, {"item": "grease"}],
    )
    now = datetime.now(UTC)
    assert read(api, asset["id"], 1499.0, t0 + timedelta(hours=1)).status_code == 201
    sweeps(api, sessions, now)
    assert plan_orders(api, plan["id"]) == []  # 499 of 500 hours
    assert read(api, asset["id"], 1500.0, t0 + timedelta(hours=2)).status_code == 201
    sweeps(api, sessions, now)
    (order,) = plan_orders(api, plan["id"])
    assert order["work_type"] == "preventive"
    assert "1500 running_hours" in order["description"]
    if order["assignee_id"] is not None:  # by the policy: the forecast books it to them
        booked = api.ok("facilities", "GET", "/api/v1/pm-forecast")["minutes_by_technician"]
        assert booked == {str(order["assignee_id"]): 30}
    assert [s["item"] for s in order["checklist"]] == ["lock out", "grease"]
    sweeps(api, sessions, now)
    assert len(plan_orders(api, plan["id"])) == 1  # never a second while one is unfinished

    # The required step is open: completing is refused with a problem document.
    path = f"{ORDERS}/{order['id']}/transitions"
    if order["state"] == "open":
        api.ok(
            "facilities",
            "POST",
            path,
            json={"to": "assigned", "assignee_id": api.user_ids["technician"]},
        )
    api.ok("facilities", "POST", path, json={"to": "in_progress"})
    refused = api.call("facilities", "POST", path, json={"to": "completed", "resolution": "fixed"})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "lock out" in refused.json()["detail"]
    current = api.ok("facilities", "GET", f"{ORDERS}/{order['id']}")
    ticked = [{**s, "done": True} for s in current["checklist"]]
    api.ok("facilities", "PATCH", f"{ORDERS}/{order['id']}", json={"checklist": ticked})
    done = api.ok("facilities", "POST", path, json={"to": "completed", "resolution": "fixed"})
    assert done["state"] == "completed"

    # The next cycle runs from the meter's total at completion: due again at 2000 h.
    assert read(api, asset["id"], 1999.0, t0 + timedelta(hours=3)).status_code == 201
    sweeps(api, sessions, now, count=4)
    assert len(plan_orders(api, plan["id"])) == 1
    assert read(api, asset["id"], 2000.5, t0 + timedelta(hours=4)).status_code == 201
    sweeps(api, sessions, now)
    assert len(plan_orders(api, plan["id"])) == 2


@pytest.mark.parametrize("anchor", ["completion", "fixed"])
def test_a_calendar_plan_makes_one_order_a_cycle(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session], anchor: str
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Inspect the coupling",
        every=2,
        unit="weeks",
        anchor=anchor,
        starts_at=start.isoformat(),
        lead_days=3,
    )
    now = datetime.now(UTC)
    sweeps(api, sessions, now)
    (order,) = plan_orders(api, plan["id"])
    finish(api, order)
    sweeps(api, sessions, now)
    assert len(plan_orders(api, plan["id"])) == 1  # the next cycle is two weeks on
    # Next due: two weeks after the completion (completion anchor), or two weeks after the
    # date the order was for (fixed schedule); generated three days (lead) before it.
    next_due = (now if anchor == "completion" else start) + timedelta(weeks=2)
    sweeps(api, sessions, next_due - timedelta(days=3, hours=2), count=4)
    assert len(plan_orders(api, plan["id"])) == 1
    sweeps(api, sessions, next_due - timedelta(days=3) + timedelta(minutes=5))
    orders = plan_orders(api, plan["id"])
    assert len(orders) == 2
    newest = max(orders, key=lambda o: o["id"])
    assert abs(datetime.fromisoformat(newest["due_at"]) - next_due) < timedelta(minutes=5)


def test_a_cancelled_order_skips_its_cycle(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Check the seals",
        every=1,
        unit="months",
        starts_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    )
    now = datetime.now(UTC)
    sweeps(api, sessions, now, count=4)
    (order,) = plan_orders(api, plan["id"])
    finish(api, order, "cancelled")
    sweeps(api, sessions, now, count=4)
    assert len(plan_orders(api, plan["id"])) == 1  # skipped: due again next month, not now


def test_meter_readings_only_grow_unless_reset(api: Api, asset: dict[str, Any]) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=5)
    first = read(api, asset["id"], 120.0, t0, unit="h")
    assert first.status_code == 201
    assert read(api, asset["id"], 120.0, t0).status_code == 200  # the same reading again
    lower = read(api, asset["id"], 100.0, t0 + timedelta(hours=1))
    assert lower.status_code == 422
    assert lower.json()["where"] == "value"
    older = read(api, asset["id"], 130.0, t0 - timedelta(hours=1))
    assert older.status_code == 422
    assert older.json()["where"] == "at"
    assert read(api, asset["id"], 130.0, t0 + timedelta(hours=1)).status_code == 201
    reset = read(api, asset["id"], 5.0, t0 + timedelta(hours=2), reset=True)
    assert reset.status_code == 201
    assert reset.json()["total"] == 135.0  # 130 before the reset, 5 since
    (meter,) = api.ok("technician", "GET", "/api/v1/meters", params={"asset_id": asset["id"]})[
        "items"
    ]
    assert (meter["value"], meter["total"], meter["unit"]) == (5.0, 135.0, "h")
    series = api.ok("technician", "GET", f"/api/v1/meters/{meter['id']}/readings")["items"]
    assert [r["total"] for r in series] == [135.0, 130.0, 120.0]


def test_counted_meters_from_the_service_are_kept_one_by_one(
    api: Api, asset: dict[str, Any]
) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    body = {
        "readings": [
            {
                "site": "plant-a",
                "asset": "pump-01",
                "name": "starts",
                "value": 3,
                "at": at.isoformat(),
            },
            {
                "site": "plant-a",
                "asset": "nope",
                "name": "starts",
                "value": 1,
                "at": at.isoformat(),
            },
            {
                "site": "plant-a",
                "asset": "pump-01",
                "name": "running_hours",
                "value": 7.5,
                "at": at.isoformat(),
                "unit": "h",
            },
        ]
    }
    result = api.ok("service", "POST", "/api/v1/meters/counted", json=body)
    assert (result["accepted"], result["duplicates"]) == (2, 0)
    assert result["rejected"] == [{"meter": "plant-a/nope/starts", "reason": "unknown asset"}]
    again = api.ok("service", "POST", "/api/v1/meters/counted", json=body)
    assert (again["accepted"], again["duplicates"]) == (0, 2)  # a retried batch adds nothing
    lower = {"readings": [{**body["readings"][0], "value": 2, "at": datetime.now(UTC).isoformat()}]}
    refused = api.ok("service", "POST", "/api/v1/meters/counted", json=lower)
    assert refused["accepted"] == 0
    assert "reset" in refused["rejected"][0]["reason"]


def test_the_forecast_shows_calendar_and_projected_meter_dues(
    api: Api, asset: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    # 10 running hours a day for the last five days: 500 h more is 50 days away.
    for day in range(6):
        read(api, asset["id"], 1000.0 + 10 * day, now - timedelta(days=5 - day))
    meter_plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Grease",
        meter_name="running_hours",
        meter_every=100,
        estimated_minutes=20,
    )
    calendar_plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Filters",
        every=1,
        unit="weeks",
        estimated_minutes=45,
    )
    forecast = api.ok("technician", "GET", "/api/v1/pm-forecast", params={"days": 30})
    due = {i["plan_id"]: i for i in forecast["items"]}
    assert due[calendar_plan["id"]]["due_by"] == "calendar"
    meter = due[meter_plan["id"]]
    assert meter["due_by"] == "meter"
    assert meter["meter_due"] == 1150.0
    projected = datetime.fromisoformat(meter["due_at"])
    assert abs(projected - (now + timedelta(days=10))) < timedelta(hours=2)
    assert forecast["minutes_by_site"] == {str(asset["site_id"]): 65}
    assert (forecast["minutes_by_technician"], forecast["unassigned_minutes"]) == ({}, 65)


def test_plan_shape_is_checked(api: Api, asset: dict[str, Any]) -> None:
    base = {"site_id": asset["site_id"], "title": "x"}
    for body in (
        {**base, "every": 1, "unit": "days"},  # no target
        {**base, "asset_id": asset["id"], "asset_type": "pump", "every": 1, "unit": "days"},
        {**base, "asset_id": asset["id"]},  # no trigger
        {**base, "asset_id": asset["id"], "every": 1},  # no unit
        {
            **base,
            "asset_id": asset["id"],
            "meter_name": "running_hours",
            "meter_every": 10,
            "meter_lead": 10,
        },
        {
            **base,
            "asset_id": asset["id"],
            "meter_name": "running_hours",
            "meter_every": 10,
            "anchor": "fixed",
        },
    ):
        assert api.call("facilities", "POST", PLANS, json=body).status_code == 422, body
    other_site = api.ok("admin", "POST", "/api/v1/sites", json={"code": "plant-z", "name": "Z"})
    wrong = {
        **base,
        "site_id": other_site["id"],
        "asset_id": asset["id"],
        "every": 1,
        "unit": "days",
    }
    assert api.call("facilities", "POST", PLANS, json=wrong).status_code == 422
    assert (
        api.call(
            "technician",
            "POST",
            PLANS,
            json={**base, "asset_id": asset["id"], "every": 1, "unit": "days"},
        ).status_code
        == 403
    )


def test_a_measurement_outside_its_limits_is_flagged(api: Api, asset: dict[str, Any]) -> None:
    order = api.ok(
        "facilities",
        "POST",
        ORDERS,
        json={
            "asset_id": asset["id"],
            "title": "Check",
            "checklist": [
                {"item": "bearing temperature", "kind": "measurement", "unit": "°C", "max": 70}
            ],
        },
    )
    step = {**order["checklist"][0], "value": 82.5, "done": True}
    changed = api.ok("facilities", "PATCH", f"{ORDERS}/{order['id']}", json={"checklist": [step]})
    assert changed["checklist"][0]["flagged"] is True
    step["value"] = 60.0
    changed = api.ok("facilities", "PATCH", f"{ORDERS}/{order['id']}", json={"checklist": [step]})
    assert changed["checklist"][0]["flagged"] is False


def test_calendar_months_end_at_the_months_last_day() -> None:
    jan31 = datetime(2027, 1, 31, 8, tzinfo=UTC)
    assert add_interval(jan31, 1, "months") == datetime(2027, 2, 28, 8, tzinfo=UTC)
    assert add_interval(jan31, 13, "months") == datetime(2028, 2, 29, 8, tzinfo=UTC)
    assert add_interval(jan31, 2, "weeks") == datetime(2027, 2, 14, 8, tzinfo=UTC)


def test_the_demo_seed_adds_its_plans_once(api: Api, asset: dict[str, Any]) -> None:
    from stack.seed import DEMO_PLANS, AdminClient, seed_plans

    token = api.settings.admin_token
    assert token is not None
    client = AdminClient(str(api.client.base_url).rstrip("/"), token.get_secret_value())
    assert seed_plans(client) == 1  # pump-01 is a pump: the greasing plan
    assert seed_plans(client) == 0  # a second seed adds nothing
    (plan,) = api.ok("facilities", "GET", PLANS)["items"]
    pump_plan = next(p for p in DEMO_PLANS if p["asset_type"] == "pump")
    assert (plan["title"], plan["meter_every"]) == (pump_plan["title"], 500.0)


def test_compliance_counts_on_time_late_skipped_and_overdue(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    made = []
    for title, hours in (
        ("on time", 5),
        ("late", -2),
        ("skipped", 3),
        ("overdue", -1),
        ("later", 48),
    ):
        order = api.ok(
            "facilities",
            "POST",
            ORDERS,
            json={
                "asset_id": asset["id"],
                "title": title,
                "work_type": "preventive",
                "due_at": (now + timedelta(hours=hours)).isoformat(),
            },
        )
        made.append(order)
    finish(api, made[0])  # before its due time
    finish(api, made[1])  # after it
    finish(api, made[2], "cancelled")
    report = api.ok(
        "facilities",
        "GET",
        "/api/v1/reports/pm-compliance",
        params={"site": "plant-a", "until": (now + timedelta(days=3)).isoformat()},
    )
    counts = {k: report[k] for k in ("on_time", "late", "skipped", "overdue", "open_not_due")}
    assert counts == {"on_time": 1, "late": 1, "skipped": 1, "overdue": 1, "open_not_due": 1}
    assert report["compliance"] == 0.25


def status(api: Api, health: float, at: datetime) -> None:
    item: dict[str, Any] = {
        "site": "plant-a",
        "asset": "pump-01",
        "state": "alarm" if health < 50 else "normal",
        "health": health,
        "contributors": [],
        "observed_at": at.isoformat(),
        "message": "",
    }
    assert (
        api.call("service", "POST", "/api/v1/asset-status", json={"items": [item]}).status_code
        == 200
    )


def test_poor_health_that_lasts_brings_a_meter_plan_forward(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    read(api, asset["id"], 1000.0, now - timedelta(days=3))
    plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Grease",
        meter_name="running_hours",
        meter_every=500,
    )
    read(api, asset["id"], 1350.0, now - timedelta(hours=1))  # 70 % of the interval
    status(api, 30.0, now - timedelta(hours=2))  # poor, but only for two hours
    sweeps(api, sessions, now, count=4)
    assert plan_orders(api, plan["id"]) == []
    status(api, 30.0, now)  # still poor: the spell runs from the first report, 2 h ago
    sweeps(api, sessions, now + timedelta(hours=21), count=4)
    assert plan_orders(api, plan["id"]) == []  # 23 h of poor health: not yet a day
    sweeps(api, sessions, now + timedelta(hours=23), count=4)
    (order,) = plan_orders(api, plan["id"])
    assert "brought forward to 60%: health 30" in order["description"]
    # Healthy again: the plan waits for its whole interval.
    finish(api, order)
    status(api, 90.0, now)
    read(api, asset["id"], 1351.0 + 350, now + timedelta(minutes=1))
    sweeps(api, sessions, now + timedelta(days=3), count=4)
    assert len(plan_orders(api, plan["id"])) == 1


def test_a_just_completed_corrective_order_counts_as_the_due_pm(
    api: Api, asset: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    corrective = api.ok(
        "facilities",
        "POST",
        ORDERS,
        json={"asset_id": asset["id"], "title": "Replace bearing", "failure_mode": "bearing_wear"},
    )
    finish(api, corrective)
    plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Bearing inspection",
        failure_mode="bearing_wear",
        every=4,
        unit="weeks",
        starts_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    )
    sweeps(api, sessions, datetime.now(UTC), count=4)
    assert plan_orders(api, plan["id"]) == []  # no second visit
    notes = api.ok("admin", "GET", f"{ORDERS}/{corrective['id']}")["notes"]
    assert "also counts as preventive maintenance 'Bearing inspection'" in notes[-1]["text"]
    due = api.ok("technician", "GET", "/api/v1/pm-forecast", params={"days": 60})["items"]
    mine: list[dict[str, Any]] = [i for i in due if i["plan_id"] == plan["id"]]
    (item,) = mine
    # The next cycle counts from the corrective order's completion: four weeks on.
    assert datetime.fromisoformat(item["due_at"]) > datetime.now(UTC) + timedelta(days=27)


SWEEP_PROCESS = """
import sys
from datetime import datetime
from api.db import make_engine, make_sessionmaker
from api.services.sweeps import sweep
from api.settings import PolicySettings
engine = make_engine(sys.argv[1])
sessions = make_sessionmaker(engine)
sys.stdin.readline()  # released together
for _ in range(5):
    sweep(sessions, PolicySettings(), datetime.fromisoformat(sys.argv[2]))
engine.dispose()
"""


def test_two_api_processes_make_one_order(api: Api, asset: dict[str, Any]) -> None:
    """Two processes (as two API replicas' background sweeps) on the same database."""
    start = datetime.now(UTC) - timedelta(hours=1)
    plan = new_plan(
        api,
        asset,
        asset_id=asset["id"],
        title="Seals",
        every=1,
        unit="weeks",
        starts_at=start.isoformat(),
    )
    now = datetime.now(UTC).isoformat()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SWEEP_PROCESS, api.settings.database_url, now],
            stdin=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    assert len(plan_orders(api, plan["id"])) == 1
