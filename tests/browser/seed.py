"""Test data of the dashboard's browser test: a small plant, its readings, users and alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from telemetry.reading import Reading

PASSWORD = "correct horse battery"  # test users only
ASSETS = (
    # code, name, type, criticality, status state, health
    ("pump-01", "Chilled water pump 1", "pump", "high", "alarm", 38.0),
    ("fan-02", "AHU-2 supply fan", "fan", "medium", "instrument", 71.0),
    ("comp-03", "Air compressor 3", "compressor", "high", "normal", 92.0),
    ("boiler-04", "Boiler 4", "boiler", "critical", "learning", None),
    ("chiller-05", "Chiller 5", "chiller", "high", "normal", 84.0),
    ("ahu-06", "AHU-6 return fan", "fan", "low", "stale", 88.0),
    ("pump-07", "Condenser pump 7", "pump", "medium", "normal", 64.0),
)


class Stack:
    """The API under test and a JSON client for setting it up."""

    def __init__(self, url: str, admin: str, service: str, database_url: str = "") -> None:
        self.url = url
        self.database_url = database_url  # for running the API's background sweep by hand
        self.client = httpx.Client(base_url=url, timeout=30)
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.service = {"Authorization": f"Bearer {service}"}

    def call(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        """A JSON API call that must succeed."""
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


def readings(now: datetime) -> list[Reading]:
    """Three hours of pump-01 at one-minute steps; vibration and temperature climb at the end."""
    out = []
    for minute in range(180, -1, -1):
        at = now - timedelta(minutes=minute)
        rising = max(0.0, 40 - minute) / 40  # the last 40 minutes
        wobble = ((minute * 7) % 11) / 11 - 0.5
        out.append(
            Reading(
                "plant-a",
                "pump-01",
                int(at.timestamp() * 1e9),
                {
                    "vibration_rms": 2.1 + 0.15 * wobble + 4.2 * rising**1.5,
                    "bearing_temp": 41.0 + 0.4 * wobble + 17.0 * rising**2,
                    "motor_current": 18.0 + 0.3 * wobble + 1.5 * rising,
                },
            )
        )
    return out


def seed(stack: Stack, now: datetime) -> dict[str, Any]:
    """Site, assets with sensors, users, asset statuses, an instrument alert, two work orders."""
    site = stack.call(
        "POST", "/api/v1/sites", stack.admin, json={"code": "plant-a", "name": "Plant A"}
    )
    ids = {}
    for code, name, kind, criticality, _, _ in ASSETS:
        asset = stack.call(
            "POST",
            "/api/v1/assets",
            stack.admin,
            json={
                "site_id": site["id"],
                "code": code,
                "name": name,
                "asset_type": kind,
                "criticality": criticality,
            },
        )
        ids[code] = asset["id"]
    for sensor, unit in (("vibration_rms", "mm/s"), ("bearing_temp", "°C"), ("motor_current", "A")):
        stack.call(
            "POST",
            f"/api/v1/assets/{ids['pump-01']}/sensors",
            stack.admin,
            json={"name": sensor, "unit": unit},
        )
    users = {}
    for username, role in (("dana", "facilities"), ("tomas", "technician")):
        user = stack.call(
            "POST",
            "/api/v1/users",
            stack.admin,
            json={"username": username, "role": role, "password": PASSWORD},
        )
        users[username] = user["id"]
    items = []
    for code, _, _, _, state, health in ASSETS:
        seen = now - (timedelta(hours=2) if state == "stale" else timedelta(seconds=40))
        item: dict[str, Any] = {
            "site": "plant-a",
            "asset": code,
            "state": state,
            "health": health,
            "observed_at": seen.isoformat(),
        }
        if state == "alarm":
            item["contributors"] = [
                {"sensor": "vibration_rms", "share": 0.72},
                {"sensor": "bearing_temp", "share": 0.21},
            ]
        if state == "instrument":
            item["message"] = "supply air temperature reads a constant 21.0 °C"
        if state == "learning":
            item["learning_until"] = (now + timedelta(days=5)).isoformat()
        items.append(item)
    result = stack.call("POST", "/api/v1/asset-status", stack.service, json={"items": items})
    assert result == {"accepted": len(ASSETS), "ignored_stale": 0}
    stack.call(
        "POST",
        "/api/v1/alerts",
        stack.service,
        json={
            "site": "plant-a",
            "asset": "fan-02",
            "kind": "instrument_stuck",
            "failure_mode": "sensor_stuck",
            "state": "active",
            "severity": "medium",
            "detected_at": (now - timedelta(hours=3)).isoformat(),
            "message": "supply air temperature has not changed for 3 hours",
        },
    )
    stack.call(
        "POST",
        "/api/v1/work-orders",
        stack.admin,
        json={
            "asset_id": ids["chiller-05"],
            "title": "Quarterly condenser coil clean",
            "work_type": "preventive",
            "priority": 3,
            "assignee_id": users["tomas"],
        },
    )
    manual = stack.call(
        "POST",
        "/api/v1/work-orders",
        stack.admin,
        json={
            "asset_id": ids["ahu-06"],
            "title": "Check gateway link of AHU-6",
            "work_type": "inspection",
            "priority": 2,
        },
    )
    stack.call(
        "POST",
        f"/api/v1/work-orders/{manual['id']}/transitions",
        stack.admin,
        json={"to": "assigned", "assignee_id": users["tomas"]},
    )
    return {"site": site, "assets": ids, "users": users}
