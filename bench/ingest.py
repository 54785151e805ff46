"""End-to-end MQTT ingest: publisher → Mosquitto → collector → InfluxDB at QoS 1, zero loss checked.

Each scenario pre-loads the broker with a backlog for a consumer's persistent session, then
connects the consumer and times the drain, so publishers do not compete for the 2 cores while
the consumer is measured. Consumers, each measured in the same run:

- raw subscriber: a paho client that only receives and counts (the MQTT ceiling);
- collector ×1 and ×N: ``python -m collector run`` processes (spool and acks on), timed until
  InfluxDB confirmed every reading (counted with InfluxQL afterwards: zero loss);
- raw InfluxDB: line protocol for the same readings, formatted in advance, POSTed in batches.

    .venv/bin/python -m bench.ingest [--messages 40000] [--gateway-messages 250] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import urllib3
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.common import report
from stack.influxdb import InfluxDBServer
from stack.mosquitto import MosquittoServer
from stack.process import free_port
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings

SENSORS = ["vibration_rms", "bearing_temp", "motor_current", "voltage", "pressure", "flow",
           "speed", "ambient"]  # fmt: skip
T0 = 1_795_392_000_000_000_000
PREFIX = "bench"


def payloads(kind: str, messages: int, part: int, parts: int) -> list[tuple[str, bytes]]:
    """This publisher's share of the messages: single readings or 100-reading gateway batches."""
    rng = random.Random(part)
    out = []
    for m in range(part, messages, parts):
        if kind == "single":
            body = {
                "time": T0 + m * 1000,
                "sensors": {s: round(rng.uniform(0, 100), 3) for s in SENSORS},
            }
            out.append(
                (f"{PREFIX}/plant-a/asset-{m % 50:03d}/telemetry", json.dumps(body).encode())
            )
        else:
            records = [
                {"asset": f"asset-{k:03d}", "time": T0 + m * 1000,
                 "sensors": {s: round(rng.uniform(0, 100), 3) for s in SENSORS}}
                for k in range(100)
            ]  # fmt: skip
            payload = json.dumps({"readings": records}).encode()
            out.append((f"{PREFIX}/plant-a/gw-{m % 10}/telemetry", payload))
    return out


def publish(host: str, port: int, kind: str, *, messages: int, part: int, parts: int) -> None:
    """Publisher process: QoS 1 in a window of 200 unacknowledged messages."""
    plan = payloads(kind, messages, part, parts)
    cond = threading.Condition()
    inflight = [0]

    def on_publish(*_: Any) -> None:
        with cond:
            inflight[0] -= 1
            cond.notify()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    for topic, payload in plan:
        with cond:
            cond.wait_for(lambda: inflight[0] < 200)
            inflight[0] += 1
        client.publish(topic, payload, qos=1)
    with cond:
        cond.wait_for(lambda: inflight[0] <= 0, 300)
    client.disconnect()
    client.loop_stop()


def preload(broker: MosquittoServer, kind: str, messages: int, publishers: int = 2) -> float:
    """Fill the broker's queues with publisher processes; returns the publish rate (msg/s)."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.ingest", "--publish", kind, str(messages),
                          str(p), str(publishers), broker.host, str(broker.port)])
        for p in range(publishers)
    ]  # fmt: skip
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("publisher failed")
    return messages / (time.perf_counter() - started)


def _props() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    return props


def raw_subscriber(broker: MosquittoServer, kind: str, messages: int) -> dict[str, float]:
    """Baseline: receive and count the backlog (auto acks)."""
    client_id = f"raw-{uuid.uuid4().hex[:6]}"
    done = threading.Event()
    first = [0.0]
    count = [0]

    def on_message(*_: Any) -> None:
        if not count[0]:
            first[0] = time.perf_counter()
        count[0] += 1
        if count[0] == messages:
            done.set()

    def session(on_connect: Any) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.on_connect = on_connect
        client.on_message = on_message
        client.connect(broker.host, broker.port, clean_start=False, properties=_props())
        client.loop_start()
        return client

    subscribed = threading.Event()
    first_client = session(lambda c, *_: c.subscribe(f"{PREFIX}/+/+/telemetry", 1))
    first_client.on_subscribe = lambda *_: subscribed.set()
    subscribed.wait(10)
    first_client.disconnect()
    first_client.loop_stop()
    publish_rate = preload(broker, kind, messages)
    started = time.perf_counter()
    client = session(lambda *_: None)
    done.wait(600)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return {"messages": count[0], "seconds": round(elapsed, 2),
            "messages_per_s": round(messages / elapsed),
            "publish_rate_msg_s": round(publish_rate)}  # fmt: skip


def metric(port: int, name: str) -> float:
    """One sample from a collector's /metrics (0 when absent)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def collectors(
    broker: MosquittoServer, influx_url: str, kind: str, *, messages: int, readings: int,
    instances: int, folder: Path,
) -> dict[str, float]:  # fmt: skip
    """Drain the backlog with ``instances`` collector processes (shared group when > 1)."""
    database = f"bench_{uuid.uuid4().hex[:8]}"
    admin = InfluxClient(InfluxSettings(url=influx_url, database=database, api="v1"))
    admin.ensure_database()
    group = f"g{uuid.uuid4().hex[:6]}" if instances > 1 else ""
    ports, configs = [], []
    for i in range(instances):
        port = free_port()
        config = folder / f"{database}-{i}.yaml"
        config.write_text(yaml.safe_dump({
            "data_dir": str(folder / f"{database}-{i}"),
            "mqtt": {"url": broker.url, "topic_prefix": PREFIX, "client_id": f"{database}-{i}",
                     "shared_group": group},
            "influx": {"url": influx_url, "database": database, "api": "v1"},
            "http": {"port": port},
            "log": {"level": "WARNING"},
        }))  # fmt: skip
        ports.append(port)
        configs.append(config)

    def start() -> list[subprocess.Popen[bytes]]:
        procs = [subprocess.Popen([sys.executable, "-m", "collector", "run", "--config", str(c)])
                 for c in configs]  # fmt: skip
        for port in ports:
            while metric(port, "equipmon_collector_mqtt_subscribed") != 1:
                time.sleep(0.05)
        return procs

    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)

    stop(start())  # create the persistent sessions and subscriptions
    preload(broker, kind, messages)
    started = time.perf_counter()
    procs = start()
    name = "equipmon_collector_readings_written_total"
    while sum(metric(p, name) for p in ports) < readings:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop(procs)
    series = admin.query("SELECT COUNT(vibration_rms) FROM telemetry")
    stored = int(series[0].values[0][1]) if series else 0
    admin.execute(f'DROP DATABASE "{database}"')
    admin.close()
    return {"instances": instances, "seconds": round(elapsed, 2), "readings_stored": stored,
            "lost": readings - stored, "messages_per_s": round(messages / elapsed),
            "readings_per_s": round(readings / elapsed),
            "values_per_s": round(readings * len(SENSORS) / elapsed)}  # fmt: skip


def raw_influx(influx_url: str, kind: str, messages: int) -> dict[str, float]:
    """Baseline: the same readings as line protocol, formatted in advance, POSTed in batches."""
    from telemetry.codecs.json_codec import decode_json

    readings = [r for _, p in payloads(kind, messages, 0, 1) for r in decode_json(p, site="plant-a",
                asset="x", now=T0)]  # fmt: skip
    database = f"raw_{uuid.uuid4().hex[:8]}"
    admin = InfluxClient(InfluxSettings(url=influx_url, database=database, api="v1"))
    admin.ensure_database()
    bodies = [admin.format(readings[i : i + 5000]) for i in range(0, len(readings), 5000)]
    http = urllib3.PoolManager()
    started = time.perf_counter()
    for body in bodies:
        response = http.request("POST", f"{influx_url}/write?db={database}&precision=ns", body=body)
        assert response.status == 204, response.data
    elapsed = time.perf_counter() - started
    admin.execute(f'DROP DATABASE "{database}"')
    admin.close()
    return {"readings_per_s": round(len(readings) / elapsed),
            "values_per_s": round(len(readings) * len(SENSORS) / elapsed)}  # fmt: skip


def scenario(broker: MosquittoServer, influx: str, kind: str, *, messages: int, folder: Path,
             scale: int) -> dict[str, Any]:  # fmt: skip
    per_message = 1 if kind == "single" else 100
    readings = messages * per_message
    result: dict[str, Any] = {"messages": messages, "readings_per_message": per_message,
                              "sensors_per_reading": len(SENSORS)}  # fmt: skip
    result["raw_subscriber"] = raw_subscriber(broker, kind, messages)
    result["raw_influx"] = raw_influx(influx, kind, messages)
    for n in (1, scale):
        result[f"collector_{n}"] = collectors(
            broker, influx, kind, messages=messages, readings=readings, instances=n, folder=folder
        )
    sub = result["raw_subscriber"]["messages_per_s"]
    raw_values = result["raw_influx"]["values_per_s"]
    for key in ("collector_1", f"collector_{scale}"):
        result[key]["vs_raw_subscriber"] = round(result[key]["messages_per_s"] / sub, 2)
        result[key]["vs_raw_influx_values"] = round(result[key]["values_per_s"] / raw_values, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=40_000, help="single-reading messages")
    parser.add_argument("--gateway-messages", type=int, default=250, help="100-reading batches")
    parser.add_argument("--scale", type=int, default=2, help="collector processes for scale-out")
    parser.add_argument("--json", help="default bench/results/ingest.json")
    parser.add_argument("--publish", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        kind, messages, part, parts, host, port = args.publish
        publish(host, int(port), kind, messages=int(messages), part=int(part), parts=int(parts))
        return
    with tempfile.TemporaryDirectory(prefix="equipmon-ingest-") as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto")
        influx = InfluxDBServer(folder / "influxdb")
        broker.start()
        influx.start()
        try:
            results = {
                "note": "2 shared cores, other work running: figures are noisy",
                "single": scenario(broker, influx.url, "single", messages=args.messages,
                                   folder=folder, scale=args.scale),
                "gateway": scenario(broker, influx.url, "gateway", messages=args.gateway_messages,
                                    folder=folder, scale=args.scale),
            }  # fmt: skip
        finally:
            broker.stop()
            influx.stop()
    report("ingest", results, args.json)


if __name__ == "__main__":
    main()
