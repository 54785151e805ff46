"""A healthy history into InfluxDB (``device_sims backfill``), and a live run that carries on
from it (``run --history-start``): the first run's data, without a jump where history ends."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from device_sims.cli import main
from device_sims.fleet import TransportOptions
from device_sims.runner import Runner, RunOptions
from device_sims.scenario import load_scenario
from device_sims.timefmt import NS_PER_S, format_rfc3339_ns
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings

SCENARIO = """\
name: history
seed: 5
start: 2026-11-23T00:00:00Z
duration: 1d
sites:
  plant-a: {utc_offset_h: 1, mean_c: 6, daily_amp_c: 4, indoor: false}
assets:
  - {name: pump-01, site: plant-a, type: pump, interval: 1s}
  - {name: fan-01, site: plant-a, type: fan, interval: 30s}
faults:
  - {asset: pump-01, kind: bearing_wear, onset: 10m, ramp: 1h, severity: 1.0}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.yaml"
    path.write_text(SCENARIO)
    return path


def test_backfill_writes_a_healthy_history_ending_now_into_influxdb(
    scenario_file: Path, influx_settings: InfluxSettings, influx_client: InfluxClient
) -> None:
    end_ns = time.time_ns() // NS_PER_S * NS_PER_S
    args = ["backfill", str(scenario_file), "--influx-url", influx_settings.url]
    args += ["--database", influx_settings.database, "--duration", "2h"]
    assert main([*args, "--end", format_rfc3339_ns(end_ns)]) == 0
    counts = {
        series.tags["asset"]: series.values[0][1]
        for series in influx_client.query("SELECT count(voltage) FROM telemetry GROUP BY asset")
    }
    assert counts == {"pump-01": 7200, "fan-01": 240}  # 2 h at 1 s and at 30 s
    (last,) = influx_client.query("SELECT last(voltage) FROM telemetry")
    assert int(last.values[0][0]) < end_ns
    assert int(last.values[0][0]) >= end_ns - 30 * NS_PER_S
    # The scenario's bearing wear (from 10 min on) is left out: vibration stays healthy.
    (vib,) = influx_client.query("SELECT max(vibration_rms) FROM telemetry WHERE asset = 'pump-01'")
    assert float(vib.values[0][1]) < 3.0  # healthy: about 1.4 mm/s; the wear passes 5


def test_a_live_run_carries_on_from_the_history_it_continues(scenario_file: Path) -> None:
    """Its first live readings are exactly what a longer backfill would have produced."""
    scenario = load_scenario(scenario_file)
    history_start = (time.time_ns() // NS_PER_S - 1800) * NS_PER_S
    live = io.BytesIO()
    runner = Runner(
        scenario,
        RunOptions(
            mode="realtime",
            history_start_ns=history_start,
            duration_ns=2 * NS_PER_S,
            out=live,
            use_transports=False,
        ),
        TransportOptions(),
    )
    runner.start()
    runner.run()
    runner.close()
    readings = [json.loads(line) for line in live.getvalue().splitlines()]
    assert readings, "no live reading in 2 s"
    assert runner.start_ns >= history_start + 1800 * NS_PER_S  # nothing of the past was sent
    # The same simulation from the same start, backfilled (healthy: the scenario's fault
    # counts from the live start, 10 minutes after these readings).
    end_ns = runner.sim.now_ns + 1
    healthy = load_scenario(scenario_file)
    healthy.faults = []
    backfill = io.BytesIO()
    Runner(
        healthy,
        RunOptions(
            mode="backfill",
            start_ns=history_start,
            duration_ns=end_ns - history_start,
            out=backfill,
            use_transports=False,
        ),
        TransportOptions(),
    ).run()
    expected = {
        (r["asset"], r["time"]): r["sensors"]
        for r in map(json.loads, backfill.getvalue().splitlines())
    }
    for reading in readings:
        assert expected[(reading["asset"], reading["time"])] == reading["sensors"]
