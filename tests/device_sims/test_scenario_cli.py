"""Scenarios, determinism, ground truth, the CLI and the live control API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from device_sims.control import call
from device_sims.engine import Sample
from device_sims.fleet import TransportOptions
from device_sims.formats import line_protocol, lp_escape, parse_serial_frame, serial_frame
from device_sims.runner import Runner, RunOptions, backfill_bytes
from device_sims.scenario import ScenarioError, load_scenario, parse_scenario
from device_sims.timefmt import parse_rfc3339_ns

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scenarios" / "demo.yaml"


def _small(seed: int = 42, duration: str = "6h") -> dict[str, object]:
    return {
        "name": "small",
        "seed": seed,
        "start": "2026-11-23T00:00:00Z",
        "duration": duration,
        "sites": {"plant-a": {"indoor": True}},
        "assets": [
            {"name": "pump-01", "type": "pump", "interval": "30s"},
            {"name": "fan-01", "type": "fan", "interval": "60s"},
            {"name": "comp-01", "type": "compressor", "interval": "20s"},
        ],
        "faults": [{"asset": "pump-01", "kind": "bearing_wear", "onset": "1h", "end": "5h"}],
    }


def test_demo_scenario_has_21_assets_on_every_transport() -> None:
    scenario = load_scenario(DEMO)
    assert len(scenario.assets) == 21
    assert {g["transport"] for g in scenario.gateways.values()} == {"http", "mqtt", "sparkplug"}
    assert {a.transport for a in scenario.assets} == {"mqtt", "gateway", "serial", "modbus"}
    assert {a.type for a in scenario.assets} == {"pump", "fan", "compressor", "ahu", "conveyor"}
    assert all(f.onset_ns - scenario.start_ns <= 6 * 3600 * 10**9 for f in scenario.faults)


def test_same_seed_gives_byte_identical_backfill_and_other_seeds_differ() -> None:
    a = backfill_bytes(parse_scenario(_small(42)))
    b = backfill_bytes(parse_scenario(_small(42)))
    c = backfill_bytes(parse_scenario(_small(43)))
    assert a == b
    assert a != c
    assert len(a.splitlines()) == 6 * 120 + 6 * 60 + 6 * 180
    lp = backfill_bytes(parse_scenario(_small(42)), "lp")
    assert lp == backfill_bytes(parse_scenario(_small(42)), "lp")


def test_cli_backfill_writes_output_and_ground_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "out.jsonl", tmp_path / "truth.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "device_sims",
        "run",
        str(DEMO),
        "--mode",
        "backfill",
        "--duration",
        "2h",
        "--out",
        str(out),
        "--truth",
        str(truth),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=60)
    first = out.read_bytes()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=60)
    assert out.read_bytes() == first
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert {(r["asset"], r["kind"]) for r in rows} == {
        ("pump-02", "bearing_wear"),
        ("ahu-02", "clogged_filter"),
        ("fan-02", "drift"),
    }  # only faults that began within the two hours
    assert rows[0]["onset"] == "2026-11-23T01:00:00.000000000Z"
    record = json.loads(first.splitlines()[0])
    assert set(record) == {"site", "asset", "time", "sensors"}


def test_scenario_errors_name_the_entry() -> None:
    doc = _small()
    doc["faults"] = [{"asset": "fan-01", "kind": "cavitation"}]
    with pytest.raises(ScenarioError, match=r"faults\[0\].*cannot have cavitation"):
        parse_scenario(doc)
    doc = _small()
    doc["assets"] = [{"name": "bad name", "type": "pump"}]
    with pytest.raises(ScenarioError, match=r"assets\[0\]"):
        parse_scenario(doc)


def test_list_and_sample_commands() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "device_sims", "list"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for word in ("pump", "fan", "compressor", "ahu", "conveyor", "bearing_wear", "stuck"):
        assert word in listing
    frames = subprocess.run(
        [
            sys.executable,
            "-m",
            "device_sims",
            "sample",
            "pump",
            "--count",
            "3",
            "--format",
            "serial",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    ).stdout.splitlines(keepends=True)
    assert [parse_serial_frame(f)[1] for f in frames] == [0, 1, 2]


def test_inject_and_clear_on_a_running_simulation(tmp_path: Path) -> None:
    scenario = replace(parse_scenario(_small(duration="30d")), faults=[])
    truth = tmp_path / "truth.jsonl"
    runner = Runner(
        scenario,
        RunOptions(
            mode="accelerated", speed=3600.0, truth_path=truth, control_port=0, use_transports=False
        ),
        TransportOptions(),
    )
    runner.start()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        url = runner.endpoints["control"]
        fault = call(url, "/faults", {"asset": "fan-01", "kind": "imbalance", "severity": 0.5})
        assert fault["fault"]["source"] == "inject"
        with pytest.raises(RuntimeError, match="cannot have cavitation"):
            call(url, "/faults", {"asset": "fan-01", "kind": "cavitation"})
        # Let simulated time run on (10 minutes at 3600x is ~0.2 s) before the repair.
        onset = parse_rfc3339_ns(call(url, "/status")["sim_time"])
        deadline = time.monotonic() + 30
        while parse_rfc3339_ns(call(url, "/status")["sim_time"]) < onset + 600 * 10**9:
            assert time.monotonic() < deadline, "simulated time did not advance"
            time.sleep(0.02)
        cleared = call(url, "/faults/clear", {"asset": "fan-01"})
        assert cleared["cleared"] == [fault["fault"]["fault_id"]]
        status = call(url, "/status")
        assert status["faults"][0]["end"] is not None
        rows = [json.loads(x) for x in truth.read_text().splitlines()]
        assert rows[0]["kind"] == "imbalance"
        assert rows[0]["end_ns"] > rows[0]["onset_ns"]
    finally:
        runner.stop_event.set()
        thread.join(5)
        runner.close()


def test_line_protocol_escaping_and_frame_limits() -> None:
    assert lp_escape("plant a,b=c") == r"plant\ a\,b\=c"
    line = line_protocol(Sample("site 1", "p=1", 5, {"v": 1.0}))
    assert line == r"telemetry,asset=p\=1,site=site\ 1 v=1.0 5"
    big = {f"sensor_{i:03d}": 12345.678 for i in range(60)}
    frame = serial_frame("pump-01", 2**32 + 7, big, 10**15)
    assert len(frame) <= 512
    asset, seq, sensors, ts = parse_serial_frame(frame)
    assert (asset, seq, ts) == ("pump-01", 7, 10**9)
    assert 0 < len(sensors) < 60
