"""The run command: `python -m stack` brings up Mosquitto and InfluxDB and stops them on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from stack.process import free_port, port_open
from tests.stack.helpers import StackPorts

pytestmark = pytest.mark.stack


def test_stack_starts_broker_and_influxdb_and_stops_cleanly(tmp_path: Path) -> None:
    mqtt_port, influx_port, api_port, collector_port, analytics_port = (
        free_port() for _ in range(5)
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stack",
            "--no-sims",
            "--data-dir",
            str(tmp_path),
            "--mqtt-port",
            str(mqtt_port),
            "--influx-port",
            str(influx_port),
            "--api-port",
            str(api_port),
            "--collector-http-port",
            str(collector_port),
            "--analytics-http-port",
            str(analytics_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the stack exited early:\n" + "".join(banner)
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(banner)
        assert f"mqtt://127.0.0.1:{mqtt_port}" in text
        assert port_open("127.0.0.1", mqtt_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz") as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{collector_port}/healthz") as resp:
            assert resp.status == 200
        with urllib.request.urlopen(
            f"http://127.0.0.1:{influx_port}/query?q=SHOW+DATABASES"
        ) as resp:
            assert b"equipmon" in resp.read()
        assert (tmp_path / "mosquitto" / "mosquitto.conf").exists()  # project-local data
        assert (tmp_path / "influxdb" / "data").is_dir()

    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "equipmon stopped." in out
    assert not port_open("127.0.0.1", mqtt_port)
    assert not port_open("127.0.0.1", influx_port)
    assert not port_open("127.0.0.1", api_port)


def test_the_demo_plant_flows_into_influxdb_over_every_transport(tmp_path: Path) -> None:
    """MQTT (JSON, line protocol, gateway batches), serial ASCII, Modbus RTU, HTTP push,
    Sparkplug B (pump-s01) and OPC UA (plc-01)."""
    ports = StackPorts.free()
    args = ports.args(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "stack", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    expected = {"pump-01", "fan-01", "conv-b01", "conv-01", "comp-02", "pump-m01", "ahu-01",
                "pump-s01", "plc-01"}  # fmt: skip
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 120  # the HTTP gateway pushes its first batch after 60 s
        while time.monotonic() < deadline and not expected <= seen:
            time.sleep(2)
            query = "q=SHOW+TAG+VALUES+FROM+telemetry+WITH+KEY+%3D+asset&db=equipmon"
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{ports.influx}/query?{query}"
                ) as resp:
                    document = json.loads(resp.read())
            except OSError:
                continue
            for series in document["results"][0].get("series", []):
                seen |= {value for _, value in series["values"]}
        # Live status from analytics, which scores the fleet from the backfilled history as
        # soon as it is up (no 15 minutes of "Learning normal behaviour" first).
        fleet = _dashboard_fleet(f"http://127.0.0.1:{ports.api}", tmp_path)
        deadline = time.monotonic() + 120
        while "Good health" not in fleet and time.monotonic() < deadline:
            time.sleep(2)
            fleet = _dashboard_fleet(f"http://127.0.0.1:{ports.api}", tmp_path)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert expected <= seen, f"missing: {sorted(expected - seen)}"
    assert proc.returncode == 0
    # The dashboard shows the registered demo fleet to the demo facilities user.
    for asset in ("pump-01", "ahu-03", "comp-02", "fan-b02"):
        assert asset in fleet
    assert "Fleet overview" in fleet
    # ... with live status from analytics: scored assets in good health.
    assert "Good health" in fleet


def _dashboard_fleet(base_url: str, data_dir: Path) -> str:
    """The fleet page as the demo facilities user sees it (password from demo-users.json)."""
    password = json.loads((data_dir / "demo-users.json").read_text())["facilities"]
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as browser:
        login = browser.post("/ui/login", data={"username": "facilities", "password": password})
        assert login.status_code == 303, login.text
        page = browser.get("/ui/fleet")
        assert page.status_code == 200
        return page.text
