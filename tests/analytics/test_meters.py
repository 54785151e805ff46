"""Running hours and starts counted from telemetry, against the simulator's own running state.

A device_sims pump on two shifts with frequent unplanned stops, read every 10 s. Ground truth
is the simulated machine's motion (its speed fraction at or above a tenth, the level at which
the counter's running indicators call it stopped), sampled and held at each reading. A meter
may be off by one sampling interval per start or stop (the interval in which it happened).
Through the service: a restart that misses most of a day, and an InfluxDB outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from analytics.meters import MeterBook, MeterCounter, MeterState
from analytics.service import DetectorService
from analytics.settings import (
    DEFAULT_METER_RULES,
    ApiSettings,
    LifecycleSettings,
    MeterRule,
    ServiceSettings,
)
from device_sims.engine import Sample
from device_sims.fleet import build_simulation
from device_sims.scenario import parse_scenario
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading
from tests.api.helpers import Api
from tests.collector.influx_proxy import InfluxProxy

SITE, ASSET = "plant-a", "pump-01"
INTERVAL_S = 10.0
START = "2026-11-16T00:00:00Z"  # a Monday


@dataclass(frozen=True)
class Truth:
    """The simulated pump's readings and its true running time and starts up to each."""

    samples: list[Sample]
    running_s: np.ndarray  # cumulative, at each sample
    starts: np.ndarray  # cumulative, at each sample
    transitions: np.ndarray  # cumulative starts + stops


@cache
def truth(days: float = 3.0) -> Truth:
    doc = {
        "name": "meters",
        "seed": 5,
        "start": START,
        "duration": f"{int(days * 24)}h",
        "sites": {SITE: {"utc_offset_h": 0}},
        "defaults": {"interval": f"{int(INTERVAL_S)}s"},
        "assets": [
            {
                "name": ASSET,
                "site": SITE,
                "type": "pump",
                "duty": {"schedule": "two_shift", "stops_per_week": 40},
            }
        ],
    }
    scenario = parse_scenario(doc, "meters")
    sim = build_simulation(scenario)
    machine = sim.assets[ASSET].machine
    samples, running = [], []
    for sample in sim.run_until(scenario.start_ns + scenario.duration_ns):
        samples.append(sample)
        running.append(machine.op.speed >= 0.1)
    on = np.asarray(running)
    held = np.concatenate([[0.0], INTERVAL_S * on[:-1]])  # the interval before each sample
    change = np.concatenate([[False], on[1:] != on[:-1]])
    starts = np.concatenate([[False], on[1:] & ~on[:-1]])
    return Truth(samples, np.cumsum(held), np.cumsum(starts), np.cumsum(change))


def sensors_of(samples: list[Sample]) -> list[str]:
    return list(samples[0].sensors)


def matrix(samples: list[Sample], sensors: list[str]) -> np.ndarray:
    return np.array([[s.sensors.get(n, np.nan) for n in sensors] for s in samples])


def test_the_counted_meters_match_the_machine() -> None:
    t = truth()
    sensors = sensors_of(t.samples)
    day = int(86400 / INTERVAL_S)
    book = MeterBook(Path("/nonexistent/meters.json"))
    state, new = book.state((SITE, ASSET))
    assert new
    counter = MeterCounter(sensors, matrix(t.samples[:day], sensors), state, max_gap_s=300)
    assert counter.has_indicators
    for sample in t.samples:
        counter.count(sample.time_ns, [sample.sensors[n] for n in sensors])
    assert t.starts[-1] >= 10, "the scenario should start and stop the pump often"
    assert state.starts == t.starts[-1]
    slack = INTERVAL_S * (t.transitions[-1] + 1)
    assert abs(state.running_s - t.running_s[-1]) <= slack, (state.running_s, t.running_s[-1])


def test_rule_meters_integrate_flow_and_count_rising_crossings() -> None:
    t = truth()
    sensors = sensors_of(t.samples)
    day = int(86400 / INTERVAL_S)
    state = MeterState()
    rules = [
        *DEFAULT_METER_RULES,
        MeterRule(name="surges", sensor="flow", kind="rising", threshold=50),
    ]
    counter = MeterCounter(
        sensors, matrix(t.samples[:day], sensors), state, max_gap_s=300, rules=rules
    )
    for sample in t.samples:
        counter.count(sample.time_ns, [sample.sensors[n] for n in sensors])
    flow = np.array([s.sensors["flow"] for s in t.samples])
    on = np.diff(t.running_s) > 0  # the interval before each next sample ran (ground truth)
    volume = float(np.sum(on * (flow[:-1] + flow[1:]) / 2 * INTERVAL_S / 3600))
    # Off by at most one interval at full flow per start or stop.
    slack = (t.transitions[-1] + 1) * INTERVAL_S * flow.max() / 3600
    assert volume > 100
    assert abs(state.counted["pumped_volume"] - volume) <= slack
    crossings = int(np.sum((flow[:-1] < 50) & (flow[1:] >= 50)))
    assert crossings > 0
    assert state.counted["surges"] == crossings


def test_a_restart_neither_counts_twice_nor_skips(tmp_path: Path) -> None:
    t = truth()
    sensors = sensors_of(t.samples)
    rows = [(s.time_ns, [s.sensors[n] for n in sensors]) for s in t.samples]
    baseline = matrix(t.samples[:360], sensors)
    half = len(rows) // 2
    first = MeterBook(tmp_path / "meters.json")
    state, _ = first.state((SITE, ASSET))
    counter = MeterCounter(sensors, baseline, state, max_gap_s=300)
    for t_ns, row in rows[:half]:
        counter.count(t_ns, row)
    first.touch((SITE, ASSET))
    first.save_if_dirty()
    # The restarted service reads an hour of history again, then goes on.
    again = MeterBook(tmp_path / "meters.json")
    state2, new = again.state((SITE, ASSET))
    assert not new
    counter2 = MeterCounter(sensors, baseline, state2, max_gap_s=300)
    counted = [counter2.count(t_ns, row) for t_ns, row in rows[half - 360 :]]
    assert not any(counted[:360]), "rows counted before the restart were counted again"
    whole = MeterBook(tmp_path / "other.json")
    reference, _ = whole.state((SITE, ASSET))
    single = MeterCounter(sensors, baseline, reference, max_gap_s=300)
    for t_ns, row in rows:
        single.count(t_ns, row)
    assert (state2.running_s, state2.starts) == (reference.running_s, reference.starts)


def service_settings(
    api: Api, influx: InfluxSettings, data_dir: Path, lookback_s: float
) -> ServiceSettings:
    assert api.settings.service_token is not None
    return ServiceSettings(
        influx=influx,
        api=ApiSettings(url=str(api.client.base_url), timeout_s=10, retry_min_s=0.05),
        service_token=api.settings.service_token,
        train_after_s=86400,
        lookback_s=lookback_s,
        data_dir=data_dir,
        status_posts=False,
        lifecycle=LifecycleSettings(retrain_every_s=10**7, grow_short_baselines=False),
    )


def api_meters(api: Api) -> dict[str, float]:
    asset = api.ok("admin", "GET", "/api/v1/assets", params={"code": ASSET})["items"][0]
    items = api.ok("admin", "GET", "/api/v1/meters", params={"asset_id": asset["id"]})["items"]
    return {m["name"]: m["value"] for m in items}


def test_the_service_counts_posts_and_catches_up_after_a_restart(
    api: Api, influx_settings: InfluxSettings, influx_client: InfluxClient, tmp_path: Path
) -> None:
    t = truth()
    readings = [Reading(SITE, ASSET, s.time_ns, s.sensors) for s in t.samples]
    day = int(86400 / INTERVAL_S)
    influx_client.write_readings(readings[: 2 * day])
    # First run, two days in its look-back: it fits on the first day, and the meters start
    # with that day's rows (a first hour at night would show the pump stopped throughout).
    k = 2 * day - 1
    clock = [t.samples[k].time_ns + 1]
    cfg = service_settings(api, influx_settings, tmp_path, lookback_s=2 * 86400 + 60)
    with DetectorService(cfg, clock_ns=lambda: clock[0]) as service:
        service.start(http=False, pollers=False)
        service.tick()
        service.meter_sync.post()
    first = api_meters(api)
    assert first["starts"] == t.starts[k]
    assert abs(first["running_hours"] * 3600 - t.running_s[k]) <= INTERVAL_S * (
        t.transitions[k] + 1
    )
    # Down for most of the third day; back with a one-hour look-back: the meters catch up
    # from their last count (one read), and count nothing twice.
    influx_client.write_readings(readings[2 * day :])
    clock[0] = t.samples[-1].time_ns + 1
    cfg = service_settings(api, influx_settings, tmp_path, lookback_s=3600)
    with DetectorService(cfg, clock_ns=lambda: clock[0]) as service:
        service.start(http=False, pollers=False)
        service.tick()
        service.meter_sync.post()
    final = api_meters(api)
    assert final["starts"] == t.starts[-1]
    slack = INTERVAL_S * (t.transitions[-1] + 1)
    assert abs(final["running_hours"] * 3600 - t.running_s[-1]) <= slack
    assert final["pumped_volume"] > 100  # the default rule meter (flow integrated, m3)


def test_an_influxdb_outage_loses_no_meter_reading(
    api: Api, influx_settings: InfluxSettings, influx_client: InfluxClient, tmp_path: Path
) -> None:
    t = truth()
    readings = [Reading(SITE, ASSET, s.time_ns, s.sensors) for s in t.samples]
    day = int(86400 / INTERVAL_S)
    influx_client.write_readings(readings[: 2 * day])
    proxy = InfluxProxy(influx_settings.url)
    try:
        through_proxy = influx_settings.model_copy(update={"url": proxy.url})
        clock = [t.samples[2 * day - 1].time_ns + 1]
        cfg = service_settings(api, through_proxy, tmp_path, lookback_s=2 * 86400 + 60)
        with DetectorService(cfg, clock_ns=lambda: clock[0]) as service:
            service.start(http=False, pollers=False)
            assert service.tick() > 0
            # InfluxDB stops answering; meanwhile the third day arrives (the collector's spool
            # drains into it when it is back).
            proxy.start_phases([("503", 3600.0)])
            assert service.tick() == 0
            assert (
                service.metrics.registry.get_sample_value(
                    "equipmon_analytics_ticks_total", {"result": "influx_error"}
                )
                == 1
            )
            influx_client.write_readings(readings[2 * day :])
            clock[0] = t.samples[-1].time_ns + 1
            proxy.start_phases([])  # back
            assert service.tick() > 0
            service.meter_sync.post()
    finally:
        proxy.close()
    final = api_meters(api)
    assert final["starts"] == t.starts[-1]
    slack = INTERVAL_S * (t.transitions[-1] + 1)
    assert abs(final["running_hours"] * 3600 - t.running_s[-1]) <= slack
