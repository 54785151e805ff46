"""Sensor faults from device_sims come out as instrument alerts, not equipment anomalies.

device_sims backfills three hours of eight pumps as line protocol into a real InfluxDB: two
healthy hours, then sensor faults (stuck, dropout of one sensor, wrong scaling, the whole asset
silent, drift, spikes) on six of them; the spikes must come out as an ``instrument_spikes``
alert, not as an equipment anomaly; a pump whose edge node reported its death (a
``source_state`` point, as the collector writes for Sparkplug) is silent without a fault. The
real DetectorService reads, fits on the first hour,
scores, reads the sensors' physical limits from the real API and posts alerts to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.service import DetectorService
from analytics.settings import ApiSettings, LifecycleSettings, RuleSettings, ServiceSettings
from api.main import create_app
from api.settings import Settings
from device_sims.machines import MACHINE_TYPES
from device_sims.runner import backfill_bytes
from device_sims.scenario import parse_scenario
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.api.helpers import Api, create_site, make_settings, serve

SITE = "plant-a"
PUMPS = [f"pump-{n:02d}" for n in range(1, 9)]
HOUR = 3600
FAULTS: list[dict[str, Any]] = [
    {"asset": "pump-01", "kind": "stuck", "sensor": "flow", "onset": "3h"},
    {"asset": "pump-02", "kind": "dropout", "sensor": "motor_current", "onset": "3h"},
    {"asset": "pump-03", "kind": "wrong_scaling", "sensor": "motor_temp", "onset": "3h"},
    {"asset": "pump-04", "kind": "dropout", "onset": "3h"},  # the whole asset goes silent
    # pump-05 stays healthy
    {
        "asset": "pump-06",
        "kind": "drift",
        "sensor": "bearing_temp",
        "onset": "3h",
        "params": {"rate_per_day": 96.0},
    },  # 4 °C per hour
    {"asset": "pump-07", "kind": "spikes", "sensor": "vibration_rms", "onset": "3h"},
    # pump-08 goes silent too, but its edge node said so (a Sparkplug death): no fault
    {"asset": "pump-08", "kind": "dropout", "onset": "3h"},
]


# A steady duty: the load does not wander over the hours, so a one-hour baseline describes the
# healthy machine (with the default duty the detector itself alarms on healthy pumps whose load
# leaves the range of their first hour; that is the detector's limit, not an instrument one).
STEADY = {
    "schedule": "continuous",
    "base_load": 0.7,
    "daily_amp": 0.0,
    "wander": 0.0,
    "steps_per_day": 0.0,
    "stops_per_week": 0.0,
    # Weekends at the same load: the four hours are read back from the wall clock, and a run
    # across Sunday midnight saw a 25 % load step on every pump.
    "weekend_factor": 1.0,
}


@pytest.fixture
def api_settings(database_url: str) -> Settings:
    """The API with plant-a, its seven pumps and their sensors' ranges as physical limits."""
    settings = make_settings(database_url)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, SITE)
        for pump in PUMPS:
            asset = api.ok(
                "admin",
                "POST",
                "/api/v1/assets",
                json={"site_id": site["id"], "code": pump, "name": pump, "asset_type": "pump"},
            )
            for spec in MACHINE_TYPES["pump"].SENSORS:
                api.ok(
                    "admin",
                    "POST",
                    f"/api/v1/assets/{asset['id']}/sensors",
                    json={
                        "name": spec.name,
                        "unit": spec.unit,
                        "min_value": spec.lo,
                        "max_value": spec.hi,
                    },
                )
    return settings


def backfill(client: InfluxClient, end_s: int) -> None:
    """Four hours of the seven pumps ending at end_s, written as device_sims' line protocol."""
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_s - 4 * HOUR))
    scenario = parse_scenario(
        {
            "name": "instrument-faults",
            "seed": 5,
            "start": start,
            "duration": "4h",
            "sites": {SITE: {"indoor": True}},
            "assets": [
                {
                    "name": "pump-{n:02d}",
                    "count": len(PUMPS),
                    "site": SITE,
                    "type": "pump",
                    "interval": "5s",
                    "duty": STEADY,
                }
            ],
            "faults": FAULTS,
        }
    )
    client.write_lines(backfill_bytes(scenario, "lp"))
    death_ns = (end_s - HOUR) * 10**9  # at the dropout's onset, as the collector records it
    client.write_lines(f"source_state,asset=pump-08,site={SITE} online=0 {death_ns}".encode())


@dataclass
class Outcome:
    """What the API holds after the service's ticks."""

    alerts: dict[tuple[str, str, str], dict[str, Any]]  # by (asset, kind, failure_mode)
    states: dict[str, str]  # asset status by asset
    messages: dict[str, str | None]  # the status message by asset
    onset_s: float


@pytest.fixture
def outcome(
    influx_client: InfluxClient,
    influx_settings: InfluxSettings,
    api_settings: Settings,
    tmp_path: Path,
) -> Outcome:
    """Backfill, run the real service's ticks against the real API, collect what it holds."""
    now = int(time.time())
    backfill(influx_client, now)
    clock = [now * 10**9]
    assert api_settings.service_token is not None
    with serve(create_app(api_settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        settings = ServiceSettings(
            influx=influx_settings,
            api=ApiSettings(url=url, retry_min_s=0.05),
            service_token=api_settings.service_token,
            train_after_s=HOUR,
            lookback_s=3 * HOUR,  # the first hour (warm-up) is not read
            data_dir=tmp_path,
            rules=RuleSettings(stale_asset_s=600, stale_sensor_s=600, stuck_min_s=600),
            # The live first fit on the first hour read (a fit on the stored history would
            # take the unread warm-up hour in too).
            lifecycle=LifecycleSettings(fit_from_history=False),
        )
        with DetectorService(settings, clock_ns=lambda: clock[0]) as service:
            service.start(http=False, pollers=False)
            service.refresh_limits()  # real HTTP: role service reads the sensors' min/max
            service.tick()  # everything: fit on the first hour read, score the rest
            service.tick()  # pump-04 sent nothing new: its silence starts counting
            clock[0] += 30 * 10**9
            service.tick()  # ... and is now past the on-delay
            assert service.outbox.wait_empty(60)
            assert service.status is not None
            assert service.status.wait_idle(30)
        api = Api(http, api_settings)
        assets = api.ok("admin", "GET", "/api/v1/assets?limit=50")["items"]
        codes = {a["id"]: a["code"] for a in assets}
        items = api.ok("admin", "GET", "/api/v1/alerts?limit=100")["items"]
        status = api.ok("admin", "GET", "/api/v1/asset-status")
    states = {s["asset"]: s["state"] for s in status}
    messages = {s["asset"]: s.get("message") for s in status}
    alerts = {(codes[a["asset_id"]], a["kind"], a["failure_mode"]): a for a in items}
    return Outcome(alerts, states, messages, now - HOUR)


def delay_s(outcome: Outcome, key: tuple[str, str, str]) -> float:
    """Seconds from fault onset to the alert's first activation."""
    opened = datetime.fromisoformat(outcome.alerts[key]["opened_at"].replace("Z", "+00:00"))
    return opened.timestamp() - outcome.onset_s


def test_sensor_faults_are_instrument_alerts_not_equipment_anomalies(outcome: Outcome) -> None:
    instrument = {key for key in outcome.alerts if key[1].startswith("instrument_")}
    assert instrument == {
        ("pump-01", "instrument_stuck", "flow"),
        ("pump-02", "instrument_stale", "motor_current"),
        ("pump-03", "instrument_out_of_range", "motor_temp"),
        ("pump-04", "instrument_stale", "asset"),
        ("pump-07", "instrument_spikes", "vibration_rms"),
    }
    # pump-06's drift is a slow level change the model may see as well; the others are not.
    for pump in ("pump-01", "pump-02", "pump-03", "pump-04", "pump-05", "pump-07", "pump-08"):
        assert (pump, "equipment_anomaly", "anomaly") not in outcome.alerts, pump
    # Raised within the rules' own times: 600 s flat / missing, 30 s silence, 10 s on-delay.
    assert delay_s(outcome, ("pump-01", "instrument_stuck", "flow")) < 20 * 60
    assert delay_s(outcome, ("pump-02", "instrument_stale", "motor_current")) < 11 * 60
    assert delay_s(outcome, ("pump-03", "instrument_out_of_range", "motor_temp")) < 60
    stuck = outcome.alerts[("pump-01", "instrument_stuck", "flow")]
    assert stuck["condition_active"]
    assert stuck["contributors"][0]["sensor"] == "flow"
    # Spikes: raised once a few isolated outliers were seen (3% of 5 s samples: minutes).
    assert delay_s(outcome, ("pump-07", "instrument_spikes", "vibration_rms")) < 20 * 60
    spikes = outcome.alerts[("pump-07", "instrument_spikes", "vibration_rms")]
    assert spikes["contributors"][0]["sensor"] == "vibration_rms"
    assert outcome.states["pump-05"] == "normal"
    assert outcome.states["pump-04"] == "stale"
    assert outcome.messages["pump-04"] == "no data"
    assert outcome.states["pump-08"] == "stale"  # silent, but known: no alert (above)
    assert outcome.messages["pump-08"] == "no data: edge node offline"
    assert {outcome.states[p] for p in ("pump-01", "pump-02", "pump-03")} == {"instrument"}
