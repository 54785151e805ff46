"""Sensor to fixed machine, with real processes throughout.

A simulated pump gets a bearing fault → its readings go over MQTT through the collector into
InfluxDB → the analytics service raises an equipment alert naming vibration/temperature → the
API opens a work order and the policy assigns it to the technician → the technician repairs the
pump (the simulator's fault is cleared) and completes the order with a failure code → the
outcome is what analytics reads back as its label → the alert clears on the repaired pump's
data and the order becomes verified.

Every service is its own process (``python -m api|collector|analytics|device_sims``) on a real
Mosquitto and InfluxDB; the test talks to them only over their public interfaces. Timings of
each step are printed (run with ``-s``) and recorded as test properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.process import free_port, port_open
from stack.supervisor import ServiceProcess
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.fixtures.services import Service

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SITE = "plant-e2e"
FAULTY, HEALTHY = "pump-01", "pump-02"
INTERVAL_S = 2
BASELINE_S = 1800  # a healthy half hour, backfilled before the live run
SCENARIO = f"""\
name: e2e
seed: 7
start: 2026-11-23T00:00:00Z
duration: 30m
sites:
  {SITE}: {{utc_offset_h: 0, mean_c: 20, daily_amp_c: 0, indoor: true}}
mqtt: {{host: 127.0.0.1, port: 1883, prefix: equipmon, window: 200, buffer: 20000}}
defaults:
  interval: {INTERVAL_S}s
assets:
  - {{name: "pump-{{n:02d}}", count: 2, site: {SITE}, type: pump, transport: mqtt, format: json,
     duty: {{schedule: continuous, stops_per_week: 0}}}}
"""


def _eventually(
    what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 1.0
) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Plant:
    """The running services and clients for the test's steps."""

    def __init__(self, tmp: Path, mosquitto: Service, influx: InfluxSettings) -> None:
        self.tmp = tmp
        self.mqtt = mosquitto
        self.influx = influx
        self.api_port, self.collector_port = free_port(), free_port()
        self.analytics_port, self.control_port = free_port(), free_port()
        self.tokens = {role: f"{role}-e2e-{'x' * 24}" for role in ("admin", "service", "gateway")}
        where = {"URL": influx.url, "DATABASE": influx.database, "API": "v1"}
        self.env = {
            f"EQUIPMON_{service}__INFLUX__{option}": value
            for service in ("COLLECTOR", "ANALYTICS", "API")
            for option, value in where.items()
        }
        self.env |= {
            "EQUIPMON_API__DATABASE_URL": f"sqlite:///{tmp / 'equipmon.db'}",
            "EQUIPMON_COLLECTOR__MQTT__URL": mosquitto.url,
            "EQUIPMON_COLLECTOR__MQTT__CLIENT_ID": f"e2e-collector-{free_port()}",
            "EQUIPMON_COLLECTOR__SPOOL__PATH": str(tmp / "spool.sqlite"),
            "EQUIPMON_COLLECTOR__HTTP__PORT": str(self.collector_port),
            "EQUIPMON_ANALYTICS__API__URL": f"http://127.0.0.1:{self.api_port}",
            "EQUIPMON_API__SERVER__PORT": str(self.api_port),
            "EQUIPMON_API__SERVER__HOST": "127.0.0.1",
            "EQUIPMON_API__SERVER__SWEEP_INTERVAL_S": "2",
            "EQUIPMON_API__POLICY__VERIFY_AFTER_S": "20",
            "EQUIPMON_API__ADMIN_TOKEN": self.tokens["admin"],
            "EQUIPMON_API__SERVICE_TOKEN": self.tokens["service"],
            "EQUIPMON_API__GATEWAY_TOKEN": self.tokens["gateway"],
            "EQUIPMON_ANALYTICS__SERVICE_TOKEN": self.tokens["service"],
            "EQUIPMON_ANALYTICS__TICK_S": "2",
            "EQUIPMON_ANALYTICS__TRAIN_AFTER_S": str(BASELINE_S - 300),
            "EQUIPMON_ANALYTICS__LOOKBACK_S": str(BASELINE_S + 600),
            "EQUIPMON_ANALYTICS__HTTP_PORT": str(self.analytics_port),
            "EQUIPMON_ANALYTICS__DATA_DIR": str(tmp / "analytics"),
            "EQUIPMON_ANALYTICS__LIFECYCLE__FEEDBACK_POLL_S": "2",
        }
        self.scenario = tmp / "e2e.yaml"
        self.scenario.write_text(SCENARIO)
        self.processes: list[ServiceProcess] = []
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v1", timeout=30)
        self.times: dict[str, float] = {}
        self.asset_ids: dict[str, int] = {}

    def start(self, name: str, args: list[str], port: int | None) -> ServiceProcess:
        ready = (lambda: port_open("127.0.0.1", port)) if port else None
        process = ServiceProcess(name, args, self.tmp / f"{name}.log", self.env, ready)
        self.processes.append(process)
        process.start()
        return process

    def sims(self, *extra: str) -> list[str]:
        return [
            *("-m", "device_sims", "run", str(self.scenario)),
            *("--mqtt-host", self.mqtt.host, "--mqtt-port", str(self.mqtt.port)),
            *extra,
        ]

    def call(
        self, who: str, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        headers = {**(headers or {}), "Authorization": f"Bearer {self.tokens[who]}"}
        response = self.api.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.log_path.read_text()[-3000:]}"
            for p in self.processes
            if p.log_path.exists()
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.api.close()


@pytest.fixture
def plant(tmp_path: Path, mosquitto: Service, influx_settings: InfluxSettings) -> Iterator[Plant]:
    running = Plant(tmp_path, mosquitto, influx_settings)
    try:
        yield running
    finally:
        running.close()


def _register(plant: Plant) -> None:
    site = plant.call("admin", "POST", "/sites", json={"code": SITE, "name": "E2E plant"})
    for code in (FAULTY, HEALTHY):
        asset = plant.call(
            "admin",
            "POST",
            "/assets",
            json={"site_id": site["id"], "code": code, "name": code, "asset_type": "pump",
                  "criticality": "high"},
        )  # fmt: skip
        plant.asset_ids[code] = asset["id"]
        for sensor in ("vibration_rms", "bearing_temp"):
            plant.call("admin", "POST", f"/assets/{asset['id']}/sensors", json={"name": sensor})
    for name, role in (("tess", "technician"), ("fred", "facilities")):
        plant.call(
            "admin",
            "POST",
            "/users",
            json={"username": name, "role": role, "password": "pw-" + "e" * 12},
        )
        login = plant.call(
            "admin", "POST", "/auth/login", json={"username": name, "password": "pw-" + "e" * 12}
        )
        plant.tokens[name] = login["token"]


def _points(influx: InfluxSettings, asset: str) -> int:
    client = InfluxClient(influx)
    try:
        series = client.query(f"SELECT count(vibration_rms) FROM telemetry WHERE asset = '{asset}'")
    finally:
        client.close()
    return int(series[0].values[0][1]) if series and series[0].values else 0


def _rows_scored(metrics_url: str) -> float:
    """How many rows analytics has scored (its Prometheus counter)."""
    for line in httpx.get(metrics_url).text.splitlines():
        if line.startswith("equipmon_analytics_rows_scored_total "):
            return float(line.split()[1])
    return 0.0


def _alerts(plant: Plant, asset: str) -> list[dict[str, Any]]:
    page = plant.call("fred", "GET", "/alerts", params={"asset_id": plant.asset_ids[asset]})
    return list(page["items"])


def _equipment_alert(plant: Plant) -> dict[str, Any] | None:
    found = [a for a in _alerts(plant, FAULTY) if a["kind"] == "equipment_anomaly"]
    return found[0] if found else None


def test_a_bearing_fault_goes_from_sensor_to_a_verified_repair(
    plant: Plant, record_property: Callable[[str, object], None]
) -> None:
    try:
        _sensor_to_verified_repair(plant)
    except BaseException:
        print(plant.log_tail())  # pytest shows it with the failure
        raise
    for name, seconds in plant.times.items():
        record_property(name, round(seconds, 1))


def _sensor_to_verified_repair(plant: Plant) -> None:
    plant.start("api", ["-m", "api"], plant.api_port)
    _register(plant)
    plant.start("collector", ["-m", "collector", "run"], plant.collector_port)

    # A healthy half hour of history, sent through MQTT like live data, is the baseline.
    start = datetime.now(UTC) - timedelta(seconds=BASELINE_S)
    backfill = plant.start(
        "sims-backfill",
        plant.sims("--mode", "backfill", "--to-transports", "--start",
                   start.isoformat().replace("+00:00", "Z"), "--duration", f"{BASELINE_S}s"),
        None,
    )  # fmt: skip
    expected = BASELINE_S // INTERVAL_S
    _eventually("the backfill in InfluxDB", lambda: _points(plant.influx, FAULTY) >= expected, 120)
    backfill.stop()

    plant.start("sims", plant.sims("--mode", "realtime", "--control-port",
                                   str(plant.control_port)), plant.control_port)  # fmt: skip
    plant.start("analytics", ["-m", "analytics", "run"], plant.analytics_port)
    metrics = f"http://127.0.0.1:{plant.analytics_port}/metrics"
    _eventually(
        "analytics to fit both pumps",
        lambda: 'equipmon_analytics_assets{phase="scored"} 2.0' in httpx.get(metrics).text,
        90,
    )
    # Healthy live scoring (15 readings of each pump, half a minute): no alert may come from it.
    scored = _rows_scored(metrics)
    _eventually("healthy live scoring", lambda: _rows_scored(metrics) >= scored + 30, 120)
    assert _equipment_alert(plant) is None

    control = f"http://127.0.0.1:{plant.control_port}"
    onset = time.monotonic()
    injected = httpx.post(
        f"{control}/faults",
        json={"asset": FAULTY, "kind": "bearing_wear", "severity": 1.0, "ramp": "3m", "growth": 0},
    )
    assert injected.status_code == 201, injected.text

    alert = _eventually("the equipment alert", lambda: _equipment_alert(plant), 300, 2)
    plant.times["onset_to_alert_s"] = time.monotonic() - onset
    leading = [c["sensor"] for c in alert["contributors"][:2]]
    assert {"vibration_rms", "bearing_temp"} & set(leading), alert["contributors"]

    order = plant.call("fred", "GET", f"/work-orders/{alert['work_order_id']}")
    plant.times["onset_to_work_order_s"] = time.monotonic() - onset
    assert order["state"] == "assigned"
    assert order["assignee_id"] == plant.call("tess", "GET", "/users/me")["id"]
    assert order["evidence"], "the order carries the alert's evidence"

    # The technician starts, repairs the pump (the simulated fault goes away), and completes.
    path = f"/work-orders/{order['id']}"

    def transition(body: dict[str, Any]) -> dict[str, Any]:
        etag = plant.api.get(path, headers={"Authorization": f"Bearer {plant.tokens['tess']}"})
        result: dict[str, Any] = plant.call(
            "tess", "POST", f"{path}/transitions", json=body,
            headers={"If-Match": etag.headers["ETag"]},
        )  # fmt: skip
        return result

    print(json.dumps({k: round(v, 1) for k, v in plant.times.items()}))
    transition({"to": "in_progress"})
    repaired = httpx.post(f"{control}/faults/clear", json={"asset": FAULTY})
    assert repaired.json()["cleared"], repaired.text
    done = transition(
        {"to": "completed", "resolution": "fixed", "failure_code": "BRG-WEAR",
         "cause": "outer race spalled", "remedy": "bearing replaced"}
    )  # fmt: skip
    assert done["state"] == "completed"

    # What analytics reads back as its label for this alert.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    outcomes = plant.call("service", "GET", "/alerts/outcomes", params={"since": since})
    mine = [o for o in outcomes if o["alert_id"] == alert["id"]]
    assert mine
    assert mine[0]["outcome"] == "confirmed_fault"
    # ... and that analytics took it: the fault period is kept out of future baselines.
    _eventually(
        "analytics to apply the confirmed-fault label",
        lambda: (
            'equipmon_analytics_feedback_labels_total{label="fault"} 1.0' in httpx.get(metrics).text
        ),
        60,
    )

    # The repaired pump's data clears the alert, and the quiet period verifies the repair.
    verified = _eventually(
        "the verified work order",
        lambda: (o := plant.call("fred", "GET", path))["state"] == "verified" and o,
        420,
        3,
    )
    plant.times["repair_to_verified_s"] = (
        time.monotonic() - onset - plant.times["onset_to_work_order_s"]
    )
    assert verified["verified_at"] is not None
    cleared = plant.call("fred", "GET", f"/alerts/{alert['id']}")
    assert cleared["cleared_at"] is not None
    # The healthy twin never alarmed.
    assert _alerts(plant, HEALTHY) == []
    print(json.dumps({k: round(v, 1) for k, v in plant.times.items()}))
