"""The run command: `python -m stack` brings up Mosquitto and InfluxDB and stops them on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack.process import free_port, port_open


def test_stack_starts_broker_and_influxdb_and_stops_cleanly(tmp_path: Path) -> None:
    mqtt_port, influx_port, api_port, collector_port = (free_port() for _ in range(4))
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
