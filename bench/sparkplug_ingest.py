"""Sparkplug B ingest against the JSON single path: same broker, same InfluxDB, same collector.

Both drain a backlog the broker queued for the collector's persistent session, timed from the
collector's HTTP endpoint coming up until InfluxDB confirmed every reading (the method of
bench/ingest.py, whose JSON run this reuses):

- JSON: ``--messages`` single-reading messages of 8 sensors at QoS 1 (bench.ingest's ``single``);
- Sparkplug: the simulated edge node's NBIRTH and DBIRTH, then ``--messages`` DDATA of the same
  8 metrics by alias, at QoS 0 as the specification requires (the broker queues QoS 0 for the
  offline persistent session: ``queue_qos0_messages true``).

The figure to hold: Sparkplug readings/s at least 0.7 of JSON's. Beside readings/s each round
prints the collector process's CPU time per reading (user + system over the drain; one reading
per message on both paths), the steadier figure on a shared machine. Prints JSON too
(``bench/results/sparkplug_ingest.json``).

    .venv/bin/python -m bench.sparkplug_ingest [--messages 50000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import report
from bench.ingest import collectors, metric
from bench.ingest_load import SENSORS, T0, cpu_seconds
from device_sims.engine import Sample
from device_sims.transports.sparkplug import SparkplugEdgeNode
from stack.influxdb import InfluxDBServer
from stack.mosquitto import MosquittoServer
from stack.process import free_port
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.progress import progress


def _wait(port: int, name: str, value: float, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while (metric(port, name) or 0.0) < value:
        if time.monotonic() > deadline:
            raise SystemExit(f"collector on {port}: {name} never reached {value}")
        time.sleep(0.005)


def _subscribed(port: int) -> bool:
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(health.get("sources", {}).get("sparkplug", {}).get("subscribed"))


def sparkplug_run(
    broker: MosquittoServer, influx_url: str, messages: int, folder: Path
) -> dict[str, Any]:
    """Drain ``messages`` queued DDATA with one collector process."""
    database = f"bench_{uuid.uuid4().hex[:8]}"
    group = f"g{uuid.uuid4().hex[:6]}"
    admin = InfluxClient(InfluxSettings(url=influx_url, database=database, api="v1"))
    admin.ensure_database()
    port = free_port()
    config = folder / f"{database}.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(folder / database),
        "mqtt": {"url": broker.url, "topic_prefix": "bench", "client_id": database},
        "influx": {"url": influx_url, "database": database, "api": "v1"},
        "http": {"port": port},
        "log": {"level": "WARNING"},
        "sparkplug": {"enabled": True, "groups": [group], "host_id": ""},
    }))  # fmt: skip
    command = [sys.executable, "-m", "collector", "run", "--config", str(config)]
    proc = subprocess.Popen(command)  # create the persistent Sparkplug session
    deadline = time.monotonic() + 60
    while not _subscribed(port):
        if time.monotonic() > deadline:
            raise SystemExit("the Sparkplug source never subscribed")
        time.sleep(0.05)
    proc.terminate()
    proc.wait(60)
    node = SparkplugEdgeNode(broker.host, broker.port, group=group, edge_node="gw-1")
    node.start()
    deadline = time.monotonic() + 30
    while node.stats()["births"] < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the edge node did not connect")
        time.sleep(0.01)
    for m in range(messages):
        values = {name: float(m % 1000) + k / 8 for k, name in enumerate(SENSORS)}
        node.send(Sample(group, f"pump-{m % 100:03d}", T0 + m * 1_000_000, values))
    node.close()  # paho writes the queued messages before its DISCONNECT
    proc = subprocess.Popen(command)
    _wait(port, "equipmon_collector_healthy", 1.0)
    started = time.perf_counter()
    cpu0 = cpu_seconds(proc.pid)
    name = "equipmon_collector_readings_written_total"
    deadline = time.monotonic() + 600
    while (done := metric(port, name) or 0.0) < messages:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1 if done < 0.9 * messages else 0.005)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(proc.pid) - cpu0
    proc.terminate()
    proc.wait(60)
    series = admin.query("SELECT COUNT(vibration_rms) FROM telemetry")
    stored = int(series[0].values[0][1]) if series else 0
    admin.execute(f'DROP DATABASE "{database}"')
    admin.close()
    return {
        "seconds": round(elapsed, 2),
        "readings_stored": stored,
        "lost": messages - stored,
        "readings_per_s": round(messages / elapsed),
        "cpu_us_per_message": round(cpu / messages * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="equipmon-bench-") as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto")
        influx = InfluxDBServer(folder / "influxdb")
        broker.start()
        influx.start()
        try:
            for _ in progress(range(args.rounds), "rounds"):
                json_run = collectors(
                    broker, influx.url, "single", messages=args.messages,
                    readings=args.messages, instances=1, folder=folder, influx_pid=influx.pid,
                )  # fmt: skip
                spb = sparkplug_run(broker, influx.url, args.messages, folder)
                rounds.append(
                    {
                        "json_readings_per_s": json_run["readings_per_s"],
                        "json_cpu_us_per_reading": json_run["cpu_us_per_message"],
                        "json_lost": json_run["lost"],
                        "sparkplug_readings_per_s": spb["readings_per_s"],
                        "sparkplug_cpu_us_per_reading": spb["cpu_us_per_message"],
                        "sparkplug_lost": spb["lost"],
                        "ratio": round(spb["readings_per_s"] / json_run["readings_per_s"], 3),
                    }
                )
                print(rounds[-1], flush=True)
        finally:
            broker.stop()
            influx.stop()
    report(
        "sparkplug_ingest",
        {
            "messages": args.messages,
            "rounds": rounds,
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "median_cpu_us_per_reading": {
                kind: statistics.median(r[f"{kind}_cpu_us_per_reading"] for r in rounds)
                for kind in ("json", "sparkplug")
            },
            "target_ratio": 0.7,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
