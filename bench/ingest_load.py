"""Load generation and raw consumers for bench/ingest.py: publishers, the raw-subscriber baselines
(each in a process of its own, like a collector), the raw InfluxDB baseline, process CPU time.

Load-generator pitfalls measured on this machine (see issue 4): ``mosquitto_pub -l`` wraps its
message id after 65,535 QoS 1 lines and silently drops the rest, and a paho publisher with
hundreds of thousands of QoS 1 messages queued beyond its in-flight window slows to a crawl. So
publishers send in windows of 200 unacknowledged messages and fail loudly unless the broker
acknowledged every message.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.ingest_shapes import SHAPES, shape_payloads

SENSORS = ["vibration_rms", "bearing_temp", "motor_current", "voltage", "pressure", "flow",
           "speed", "ambient"]  # fmt: skip
T0 = 1_795_392_000_000_000_000
PREFIX = "bench"
WINDOW = 200
RECEIVE_MAXIMUM = 1000  # same Receive Maximum as the collector's default inflight_window


def payloads(kind: str, messages: int, part: int, parts: int) -> list[tuple[str, bytes]]:
    """This publisher's share of the messages: single readings or 100-reading gateway batches
    (or one of the documented shapes of bench/ingest_shapes.py)."""
    if kind in SHAPES:
        return shape_payloads(kind, messages, part, parts)
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
    """Publisher process: QoS 1 in a window; exits non-zero unless every message was PUBACKed."""
    plan = payloads(kind, messages, part, parts)
    cond = threading.Condition()
    inflight = [0]
    acked = [0]

    def on_publish(*_: Any) -> None:
        with cond:
            inflight[0] -= 1
            acked[0] += 1
            cond.notify()

    # v3.1.1: the publisher is not what is measured, and it skips paho's v5 property objects.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    for topic, payload in plan:
        with cond:
            cond.wait_for(lambda: inflight[0] < WINDOW)
            inflight[0] += 1
        client.publish(topic, payload, qos=1)
    with cond:
        cond.wait_for(lambda: inflight[0] <= 0, 300)
    client.disconnect()
    client.loop_stop()
    if acked[0] != len(plan):
        raise SystemExit(f"publisher {part}: only {acked[0]} of {len(plan)} acknowledged")


def preload(host: str, port: int, kind: str, messages: int, publishers: int = 2) -> float:
    """Fill the broker's queues with publisher processes; returns the publish rate (msg/s)."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.ingest_load", "publish", kind,
                          str(messages), str(p), str(publishers), host, str(port)])
        for p in range(publishers)
    ]  # fmt: skip
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("publisher failed")
    return messages / (time.perf_counter() - started)


def connect_properties() -> Properties:
    """A persistent v5 session with the collector's Receive Maximum."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def make_subscriber(variant: str, client_id: str) -> mqtt.Client:
    """``stock``/``stock311``: paho as documented over MQTT v5/v3.1.1 (the issue's minimal
    subscriber); ``lean``: the collector's receive path (``collector.sources.paho_fast``)."""
    if variant == "lean":
        from collector.sources.paho_fast import FastClient

        return FastClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if variant == "stock311":
        return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv311, clean_session=False)  # fmt: skip
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


def connect_subscriber(client: mqtt.Client, variant: str, host: str, port: int) -> None:
    """Connect to the persistent session (v3.1.1: clean_session=False, set on the client)."""
    if variant == "stock311":
        client.connect(host, port)
    else:
        client.connect(host, port, clean_start=False, properties=connect_properties())


def create_session(host: str, port: int, client_id: str, variant: str = "stock") -> None:
    """Subscribe once with a persistent session, so the broker queues the backlog for it."""
    client = make_subscriber("stock311" if variant == "stock311" else "stock", client_id)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe(f"{PREFIX}/+/+/telemetry", 1)
    client.on_subscribe = lambda *_: subscribed.set()
    connect_subscriber(client, variant, host, port)
    client.loop_start()
    if not subscribed.wait(10):
        raise SystemExit("raw subscriber: no SUBACK")
    client.disconnect()
    client.loop_stop()


def drop_session(host: str, port: int, client_id: str) -> None:
    """Delete a consumer's persistent session (and its queue) once it has been measured.

    Left in place, every measured consumer keeps a subscription: each later preload is queued
    for all of them, which multiplies the broker's work and its autosave (measured: a drain
    stalled for seconds in the round after the single-message rounds).
    """
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(host, port, clean_start=True, properties=props)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"could not drop the session of {client_id}")
    client.disconnect()
    client.loop_stop()


def drain(host: str, port: int, client_id: str, messages: int, variant: str) -> dict[str, Any]:
    """Subscriber process: receive and count the backlog (auto acks); time and CPU of the drain."""
    done = threading.Event()
    count = [0]

    def on_message(*_: Any) -> None:
        count[0] += 1
        if count[0] >= messages:
            done.set()

    client = make_subscriber(variant, client_id)
    client.on_message = on_message
    if hasattr(client, "on_publish_fast"):
        client.on_publish_fast = on_message
    started, cpu = time.perf_counter(), time.process_time()
    connect_subscriber(client, variant, host, port)
    client.loop_start()
    done.wait(600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.disconnect()
    client.loop_stop()
    return {"variant": variant, "messages": count[0], "lost": messages - count[0],
            "seconds": round(elapsed, 3), "messages_per_s": round(count[0] / elapsed),
            "cpu_us_per_message": round(cpu / max(1, count[0]) * 1e6, 1)}  # fmt: skip


def raw_subscriber(host: str, port: int, kind: str, messages: int, variant: str) -> dict[str, Any]:
    """Baseline: preload a backlog, then drain it with a counting subscriber process."""
    client_id = f"raw-{variant}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    create_session(host, port, client_id, variant)
    publish_rate = preload(host, port, kind, messages)
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest_load", "drain", host, str(port), client_id,
         str(messages), variant],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    drop_session(host, port, client_id)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["publish_rate_msg_s"] = round(publish_rate)
    return result


def raw_influx(url: str, database: str, bodies: list[bytes], writers: int) -> float:
    """Seconds to POST pre-formatted line-protocol bodies with ``writers`` concurrent clients."""
    http = urllib3.PoolManager(maxsize=writers)
    target = f"{url}/write?db={database}&precision=ns"
    errors: list[str] = []

    def post(share: list[bytes]) -> None:
        for body in share:
            response = http.request("POST", target, body=body)
            if response.status != 204:
                errors.append(f"{response.status}: {response.data[:200]!r}")

    threads = [threading.Thread(target=post, args=(bodies[i::writers],)) for i in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"raw InfluxDB write failed: {errors[0]}")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc), all threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> None:
    """Child-process entry points: ``publish ...`` and ``drain ...``."""
    if argv[0] == "publish":
        kind, messages, part, parts, host, port = argv[1:7]
        publish(host, int(port), kind, messages=int(messages), part=int(part), parts=int(parts))
    elif argv[0] == "drain":
        host, port, client_id, messages, variant = argv[1:6]
        print(json.dumps(drain(host, int(port), client_id, int(messages), variant)))
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
