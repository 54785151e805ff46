"""The demo's first-run content of the API: the asset register and the demo users.

The asset register comes from the scenario (``python -m device_sims assets``: sites, assets,
their sensors with units and physical ranges), as an operator would enter it in a CMMS, so that
alerts and work orders have real assets to refer to. Demo users (one facilities manager, one
technician) get random passwords kept in ``demo-users.json``; they are printed once, when made.
Every step is idempotent: a second run finds what exists and adds only what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# Machines whose stop halts production or comfort at once get the higher criticality: the
# work-order policy weighs an alert's severity by it.
CRITICALITY = {"pump": "high", "compressor": "high", "conveyor": "high"}
TYPE_NAMES = {
    "pump": "Pump",
    "fan": "Fan",
    "compressor": "Compressor",
    "conveyor": "Conveyor",
    "ahu": "Air handler",
    "machine": "Controller",
}
DEMO_USERS = (
    ("facilities", "facilities", "Fran Facilities"),
    ("technician", "technician", "Theo Technician"),
)


class SeedError(RuntimeError):
    """The API refused a seeding call; the message says which and why."""


@dataclass
class AdminClient:
    """Just enough of the API for seeding, with the bootstrap admin token."""

    base_url: str
    token: str

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        response = httpx.request(
            method,
            f"{self.base_url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        if response.is_error:
            raise SeedError(f"{method} {path}: {response.status_code} {response.content[:300]!r}")
        return response.json() if response.content else None

    def all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paginated list."""
        items: list[dict[str, Any]] = []
        sep = "&" if "?" in path else "?"
        while True:
            page = self.call("GET", f"{path}{sep}limit=500&offset={len(items)}")
            items.extend(page["items"])
            if len(items) >= page["total"] or not page["items"]:
                return items


# The demo's plants are in Ho Chi Minh City: its pages show UTC+07:00 times (docs/i18n.md).
DEMO_TIMEZONE = "Asia/Ho_Chi_Minh"


def scenario_register(scenario: Path) -> list[dict[str, Any]]:
    """The scenario's assets with their sensors, from device_sims (run as a process)."""
    result = subprocess.run(
        [sys.executable, "-m", "device_sims", "assets", str(scenario)],
        check=True,
        capture_output=True,
        text=True,
    )
    register: list[dict[str, Any]] = json.loads(result.stdout)
    return register


def seed_assets(client: AdminClient, register: list[dict[str, Any]]) -> int:
    """Create missing sites, assets and sensors; returns how many assets were added."""
    sites = {s["code"]: s["id"] for s in client.all("/sites")}
    existing = {(a["site_id"], a["code"]) for a in client.all("/assets")}
    added = 0
    for entry in register:
        site = entry["site"]
        if site not in sites:
            body = {"code": site, "name": site, "timezone": DEMO_TIMEZONE}
            sites[site] = client.call("POST", "/sites", body)["id"]
        if (sites[site], entry["asset"]) in existing:
            continue
        asset = client.call(
            "POST",
            "/assets",
            {
                "site_id": sites[site],
                "code": entry["asset"],
                "name": f"{TYPE_NAMES.get(entry['type'], entry['type'])} {entry['asset']}",
                "asset_type": entry["type"],
                "criticality": CRITICALITY.get(entry["type"], "medium"),
            },
        )
        for sensor in entry["sensors"]:
            client.call("POST", f"/assets/{asset['id']}/sensors", sensor)
        added += 1
    return added


# The demo's preventive maintenance: one plan per site and machine type (issue 17).
DEMO_PLANS: tuple[dict[str, Any], ...] = (
    {
        "asset_type": "ahu",
        "title": "Change the air filters",
        "every": 3,
        "unit": "months",
        "lead_days": 7,
        "estimated_minutes": 45,
        "checklist": [
            {"item": "isolate the fan and lock out", "required": True},
            {"item": "replace pre- and bag filters", "required": True},
            {"item": "filter pressure drop after", "kind": "measurement", "unit": "Pa", "max": 120},
        ],
    },
    {
        "asset_type": "pump",
        "title": "Grease the bearings",
        "meter_name": "running_hours",
        "meter_every": 500,
        "meter_lead": 25,
        "estimated_minutes": 30,
        "checklist": [
            {"item": "isolate and lock out", "required": True},
            {"item": "grease both bearings", "required": True},
            {
                "item": "bearing temperature after an hour",
                "kind": "measurement",
                "unit": "°C",
                "max": 70,
            },
        ],
    },
)


def seed_plans(client: AdminClient) -> int:
    """The demo plans on every site that has assets of their type; how many were added."""
    existing = {(p["site_id"], p["asset_type"], p["title"]) for p in client.all("/pm-plans")}
    types = {(a["site_id"], a["asset_type"]) for a in client.all("/assets")}
    added = 0
    for site_id, asset_type in sorted(types):
        for plan in DEMO_PLANS:
            if plan["asset_type"] != asset_type or (site_id, asset_type, plan["title"]) in existing:
                continue
            client.call("POST", "/pm-plans", {"site_id": site_id, **plan})
            added += 1
    return added


def seed_users(client: AdminClient, data_dir: Path) -> dict[str, str] | None:
    """Demo users with passwords kept in data_dir; their passwords when just made, else None."""
    path = data_dir / "demo-users.json"
    if path.exists():
        return None
    passwords = {name: secrets.token_urlsafe(9) for name, _, _ in DEMO_USERS}
    known = {u["username"] for u in client.all("/users")}
    for name, role, display in DEMO_USERS:
        if name not in known:
            client.call(
                "POST",
                "/users",
                {
                    "username": name,
                    "role": role,
                    "password": passwords[name],
                    "display_name": display,
                },
            )
    path.touch(mode=0o600)
    path.write_text(json.dumps(passwords, indent=2) + "\n")
    return passwords


def seed_notifications(client: AdminClient) -> int:
    """The demo's notifications: e-mail for the demo users, an all-week rota per site (the
    technician on call, the facilities manager above), and one escalating alert rule; how
    many rules were added (none when the demo already has rules)."""
    if client.all("/notification-rules"):
        return 0
    users = {u["username"]: u["id"] for u in client.all("/users")}
    for name in ("facilities", "technician"):
        if name in users:
            prefs = {"channels": ["email"], "email": f"{name}@demo.equipmon.local"}
            client.call("PUT", f"/users/{users[name]}/notification-settings", prefs)
    for site in client.all("/sites"):
        for level, name in ((1, "technician"), (3, "facilities")):
            for day in range(7):
                if name in users:
                    shift = {"site_id": site["id"], "level": level, "user_id": users[name],
                             "weekday": day, "starts": "00:00", "ends": "00:00"}  # fmt: skip
                    client.call("POST", "/on-call/shifts", shift)
    rule = {
        "name": "Alerts: on call first, then the facilities manager",
        "event": "alert.raised",
        "min_severity": "medium",
        "steps": [
            {"after_minutes": 0, "to": ["on_call:1"]},
            {"after_minutes": 15, "to": ["on_call:2", "on_call:3"]},
        ],
    }
    client.call("POST", "/notification-rules", rule)
    assigned = {"name": "Assignments", "event": "work_order.assigned",
                "steps": [{"after_minutes": 0, "to": ["assignee"]}]}  # fmt: skip
    client.call("POST", "/notification-rules", assigned)
    return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m stack.seed``: seed an API that runs elsewhere (docker-compose's seed job)."""
    parser = argparse.ArgumentParser(prog="python -m stack.seed", description=main.__doc__)
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="keeps demo-users.json")
    args = parser.parse_args(argv)
    # The API's own variable, so one environment serves both; the old name for one release.
    token = os.environ.get("EQUIPMON_API__ADMIN_TOKEN", "")
    if not token and os.environ.get("EQUIPMON_ADMIN_TOKEN"):
        token = os.environ["EQUIPMON_ADMIN_TOKEN"]
        print(
            "warning: EQUIPMON_ADMIN_TOKEN is deprecated: rename it to EQUIPMON_API__ADMIN_TOKEN",
            file=sys.stderr,
        )
    if not token:
        print("error: EQUIPMON_API__ADMIN_TOKEN is not set", file=sys.stderr)
        return 2
    client = AdminClient(args.api_url.rstrip("/"), token)
    try:
        added = seed_assets(client, scenario_register(args.scenario))
        seed_plans(client)
        args.data_dir.mkdir(parents=True, exist_ok=True)
        passwords = seed_users(client, args.data_dir)
    except (SeedError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{added} assets added")
    for name, password in (passwords or {}).items():
        print(f"demo user {name}: {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
