"""End-to-end MQTT ingest: publisher → Mosquitto → collector → InfluxDB at QoS 1, zero loss checked.

Every consumer drains a backlog pre-loaded into the broker for its persistent session, so the
publishers (bench/ingest_load.py) never compete for the 2 cores while a consumer is measured.
Each round measures, in turn and in the same run:

- raw subscribers ``stock`` (MQTT v5) and ``stock311`` (v3.1.1): a process with a
  documented-usage paho client that only receives and counts (auto acks); the faster of the two
  is the issue's baseline (v3.1.1, measured: paho decodes v5 properties for every PUBLISH);
- raw subscriber ``lean``: the same, with the collector's receive path
  (``collector.sources.paho_fast``): what the collector's MQTT side costs before any real work;
- raw InfluxDB: the same readings as line protocol, formatted in advance, POSTed in 5,000-line
  bodies by 1 and by 2 concurrent writers (the faster is the baseline);
- collector ×1 and ×N (shared group): ``python -m collector run`` processes with spool and acks
  on, timed from their HTTP endpoint coming up (just before the MQTT connect; interpreter start
  is not counted) until InfluxDB confirmed every reading; an InfluxQL count afterwards checks
  that none was lost. Each run records the cores the collectors, Mosquitto and InfluxDB used,
  and the rate all of the machine's cores would carry at that cost: the ceiling no number of
  collector processes can beat.

The ``shapes`` scenario sends each payload shape README.md and docs/device_sims.md document
(bench/ingest_shapes.py: site and asset in the body, RFC 3339 times, every precision, quality,
line protocol, for single readings and 100-reading gateway batches) through one collector, and
through the collector's intake alone (CPU per message in this process), beside the bare shape
of its family in the same round, and prints each one's ratio to it.

Each consumer's persistent session is deleted once it has been measured, so later preloads are
not queued for it. Ratios are taken within a round (same machine state), then the median over
``--rounds``. CPU microseconds per message (all threads of the consumer process) are printed
too: on a shared machine they vary less than wall-clock rates.

    .venv/bin/python -m bench.ingest [--messages 100000] [--gateway-messages 2000] [--rounds 3]
        [--only single|gateway|shapes] [--shape-messages 20000] [--shape-gateway-messages 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench.common import report
from bench.ingest_load import (
    PREFIX,
    RECEIVE_MAXIMUM,
    SENSORS,
    T0,
    cpu_seconds,
    drop_session,
    payloads,
    preload,
    raw_influx,
    raw_subscriber,
)
from bench.ingest_shapes import SHAPES, SINGLES, readings_per_message
from collector.intake import Intake
from collector.spool import SpoolEntry
from stack.influxdb import InfluxDBServer
from stack.mosquitto import MosquittoServer
from stack.process import free_port
from telemetry.codecs.json_codec import decode_json
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.progress import progress


def metric(port: int, name: str) -> float | None:
    """One sample from a collector's /metrics (None while the endpoint is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def collectors(
    broker: MosquittoServer, influx_url: str, kind: str, *, messages: int, readings: int,
    instances: int, folder: Path, influx_pid: int | None,
) -> dict[str, Any]:  # fmt: skip
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
                     "shared_group": group, "inflight_window": RECEIVE_MAXIMUM},
            "influx": {"url": influx_url, "database": database, "api": "v1"},
            "http": {"port": port},
            "log": {"level": "WARNING"},
        }))  # fmt: skip
        ports.append(port)
        configs.append(config)

    def start() -> list[subprocess.Popen[bytes]]:
        return [subprocess.Popen([sys.executable, "-m", "collector", "run", "--config", str(c)])
                for c in configs]  # fmt: skip

    def wait_up(name: str, value: float = 1.0) -> None:
        deadline = time.monotonic() + 60
        for port in ports:
            while (metric(port, name) or 0.0) < value:
                if time.monotonic() > deadline:
                    raise SystemExit(f"collector on {port}: {name} never reached {value}")
                time.sleep(0.005)

    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)

    procs = start()  # create the persistent sessions and subscriptions
    wait_up("equipmon_collector_mqtt_subscribed")
    stop(procs)
    preload(broker.host, broker.port, kind, messages)
    procs = start()
    # The HTTP endpoint starts right before the MQTT connect: time (and CPU) from there.
    wait_up("equipmon_collector_healthy")
    started = time.perf_counter()
    cpu0 = sum(cpu_seconds(p.pid) for p in procs)
    # Where the machine's 2 cores go during the drain (the broker and InfluxDB need theirs).
    broker0 = cpu_seconds(broker.pid) if broker.pid else 0.0
    influx0 = cpu_seconds(influx_pid) if influx_pid else 0.0
    name = "equipmon_collector_readings_written_total"
    deadline = time.monotonic() + 600
    while (done := sum(metric(p, name) or 0.0 for p in ports)) < readings:
        if time.monotonic() > deadline:
            break  # lost readings: the count below says how many
        # A /metrics scrape costs the collector ~1 ms of CPU: poll slowly until the end is near
        # (measured: polling every 20 ms throughout took 5-10% of a collector's CPU).
        time.sleep(0.1 if done < 0.9 * readings else 0.005)
    elapsed = time.perf_counter() - started
    cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
    cores = {
        "collectors": round(cpu / elapsed, 2),
        "mosquitto": round((cpu_seconds(broker.pid) - broker0) / elapsed, 2)
        if broker.pid
        else None,
        "influxd": round((cpu_seconds(influx_pid) - influx0) / elapsed, 2) if influx_pid else None,
    }
    # What the machine could carry at this CPU cost per message if every core were busy with
    # this pipeline: no number of collector processes can beat it (docs/collector.md).
    busy = sum(c for c in cores.values() if c is not None)
    ceiling = round(messages / elapsed * (os.cpu_count() or 1) / busy) if busy else None
    stop(procs)
    for i in range(instances):  # later preloads must not be queued for this run's sessions
        drop_session(broker.host, broker.port, f"{database}-{i}")
    series = admin.query("SELECT COUNT(vibration_rms) FROM telemetry")
    stored = int(series[0].values[0][1]) if series else 0
    admin.execute(f'DROP DATABASE "{database}"')
    admin.close()
    return {"instances": instances, "seconds": round(elapsed, 2), "readings_stored": stored,
            "lost": readings - stored, "messages_per_s": round(messages / elapsed),
            "readings_per_s": round(readings / elapsed),
            "values_per_s": round(readings * len(SENSORS) / elapsed),
            "cpu_us_per_message": round(cpu / messages * 1e6, 1), "cores": cores,
            "cores_busy": round(busy, 2), "machine_ceiling_messages_per_s": ceiling}  # fmt: skip


def influx_baseline(influx_url: str, kind: str, messages: int) -> dict[str, Any]:
    """Raw line-protocol ingest of the same readings, 1 and 2 concurrent writers (fresh db each)."""
    readings = [r for _, p in payloads(kind, messages, 0, 1)
                for r in decode_json(p, site="plant-a", asset="x", now=T0)]  # fmt: skip
    admin = InfluxClient(InfluxSettings(url=influx_url, database="x", api="v1"))
    bodies = [admin.format(readings[i : i + 5000]) for i in range(0, len(readings), 5000)]
    result: dict[str, Any] = {"readings": len(readings), "batch_lines": 5000}
    for writers in (1, 2):
        database = f"raw_{uuid.uuid4().hex[:8]}"
        admin.ensure_database(database)
        elapsed = raw_influx(influx_url, database, bodies, writers)
        series = admin.query(f'SELECT COUNT(vibration_rms) FROM "{database}"..telemetry')
        stored = int(series[0].values[0][1]) if series else 0
        admin.execute(f'DROP DATABASE "{database}"')
        if stored != len(readings):
            raise SystemExit(f"raw InfluxDB: {stored} of {len(readings)} stored")
        result[f"writers_{writers}_values_per_s"] = round(len(readings) * len(SENSORS) / elapsed)
    admin.close()
    result["values_per_s"] = max(result["writers_1_values_per_s"], result["writers_2_values_per_s"])
    result["readings_per_s"] = round(result["values_per_s"] / len(SENSORS))
    return result


def one_round(broker: MosquittoServer, influx: str, kind: str, *, messages: int, folder: Path,
              scale: int, influx_pid: int | None) -> dict[str, Any]:  # fmt: skip
    """Every consumer once, in turn; ratios within the round."""
    readings = messages * (1 if kind == "single" else 100)
    result: dict[str, Any] = {}
    for variant in ("stock", "stock311", "lean"):
        result[f"raw_subscriber_{variant}"] = raw_subscriber(
            broker.host, broker.port, kind, messages, variant
        )
    result["raw_influx"] = influx_baseline(influx, kind, messages)
    for n in sorted({1, scale}):
        result[f"collector_{n}"] = collectors(
            broker, influx, kind, messages=messages, readings=readings, instances=n, folder=folder,
            influx_pid=influx_pid,
        )  # fmt: skip
    # The baseline is "a minimal paho subscriber": the faster protocol version counts.
    stock = max(result[f"raw_subscriber_{v}"]["messages_per_s"] for v in ("stock", "stock311"))
    result["raw_subscriber_best_stock"] = stock
    lean = result["raw_subscriber_lean"]["messages_per_s"]
    raw_values = result["raw_influx"]["values_per_s"]
    for n in sorted({1, scale}):
        entry = result[f"collector_{n}"]
        entry["vs_raw_subscriber"] = round(entry["messages_per_s"] / stock, 2)
        entry["vs_raw_subscriber_lean"] = round(entry["messages_per_s"] / lean, 2)
        entry["vs_raw_influx_values"] = round(entry["values_per_s"] / raw_values, 2)
    if scale > 1:
        result["scale_out_gain"] = round(
            result[f"collector_{scale}"]["messages_per_s"]
            / result["collector_1"]["messages_per_s"],
            2,
        )
    return result


def intake_cost(shape: str, messages: int) -> dict[str, Any]:
    """CPU per message of the collector's intake alone (decode, validate, format), in this
    process: bursts of 100 messages as the MQTT source hands them over, topics learnt first."""
    plan = payloads(shape, messages, 0, 1)
    intake = Intake(prefix=PREFIX, clock_ns=time.time_ns)
    bursts = [plan[i : i + 100] for i in range(0, len(plan), 100)]
    for topic, payload in plan[:200]:  # learn the topics (first messages: the general path)
        intake.process(topic, payload)
    started = time.process_time()
    rejected = 0
    for burst in bursts:
        topics, bodies = [t for t, _ in burst], [b for _, b in burst]
        rejected += sum(type(e) is not SpoolEntry for e in intake.process_many(topics, bodies))
    cpu = time.process_time() - started
    if rejected:
        raise SystemExit(f"{shape}: {rejected} messages rejected by the intake")
    return {
        "messages": messages,
        "us_per_message": round(cpu / messages * 1e6, 2),
        "us_per_reading": round(cpu / messages / readings_per_message(shape) * 1e6, 2),
    }


def shapes_round(broker: MosquittoServer, influx: str, *, messages: int, gateway_messages: int,
                 folder: Path, influx_pid: int | None) -> dict[str, Any]:  # fmt: skip
    """Every documented shape end to end (one collector) and through the intake alone, with
    its ratio to the bare shape of its family measured in the same round."""
    result: dict[str, Any] = {}
    for shape in progress(SHAPES, "shapes"):
        count = messages if shape in SINGLES else gateway_messages
        result[shape] = {
            "intake": intake_cost(shape, count),
            "collector": collectors(broker, influx, shape, messages=count,
                                    readings=count * readings_per_message(shape), instances=1,
                                    folder=folder, influx_pid=influx_pid),
        }  # fmt: skip
    for shape in SHAPES:
        entry, bare = result[shape], result["single_bare" if shape in SINGLES else "gateway_bare"]
        entry["throughput_vs_bare"] = round(
            entry["collector"]["readings_per_s"] / bare["collector"]["readings_per_s"], 2
        )
        # CPU per message: less noisy on a shared machine than a wall-clock rate.
        entry["collector_cpu_vs_bare"] = round(
            bare["collector"]["cpu_us_per_message"] / entry["collector"]["cpu_us_per_message"], 2
        )
        entry["intake_vs_bare"] = round(
            bare["intake"]["us_per_message"] / entry["intake"]["us_per_message"], 2
        )
    return result


def shapes_summary(label: str, r: dict[str, Any]) -> None:
    """One line per shape: readings/s, CPU per message, intake cost and the ratios to bare."""
    print(f"[shapes {label}] shape: collector readings/s (CPU us/msg, lost) = throughput vs"
          " bare, CPU vs bare; intake us/msg = vs bare")  # fmt: skip
    for shape, e in r.items():
        c = e["collector"]
        print(f"  {shape:<24}{c['readings_per_s']:>9.0f} ({c['cpu_us_per_message']} us,"
              f" lost {c['lost']}) = {e['throughput_vs_bare']}, {e['collector_cpu_vs_bare']};"
              f" intake {e['intake']['us_per_message']} us = {e['intake_vs_bare']}",
              flush=True)  # fmt: skip


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over the rounds (same keys as one round)."""
    out: dict[str, Any] = {}
    for key, value in rounds[0].items():
        if isinstance(value, dict):
            out[key] = medians([r[key] for r in rounds])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(statistics.median(r[key] for r in rounds), 2)
        else:
            out[key] = value
    return out


def scenario(broker: MosquittoServer, influx: str, kind: str, *, messages: int, folder: Path,
             scale: int, rounds: int, influx_pid: int | None) -> dict[str, Any]:  # fmt: skip
    """``rounds`` rounds of one payload kind; medians plus every round's figures."""
    samples = []
    for number in progress(range(rounds), f"{kind} rounds"):
        samples.append(one_round(broker, influx, kind, messages=messages, folder=folder,
                                 scale=scale, influx_pid=influx_pid))  # fmt: skip
        summary(kind, f"round {number + 1}", samples[-1], scale)
    median = medians(samples)
    summary(kind, "median", median, scale)
    return {"messages": messages, "readings_per_message": 1 if kind == "single" else 100,
            "sensors_per_reading": len(SENSORS), "median": median, "rounds": samples}  # fmt: skip


def summary(kind: str, label: str, r: dict[str, Any], scale: int) -> None:
    """One human-readable line per round (the JSON has everything)."""
    c1, cn = r["collector_1"], r[f"collector_{scale}"]
    print(
        f"[{kind} {label}] raw sub stock v5 {r['raw_subscriber_stock']['messages_per_s']:.0f}"
        f" msg/s, v3.1.1 {r['raw_subscriber_stock311']['messages_per_s']:.0f}"
        f" ({r['raw_subscriber_stock311']['cpu_us_per_message']} us/msg), lean"
        f" {r['raw_subscriber_lean']['messages_per_s']:.0f}; raw influx"
        f" {r['raw_influx']['values_per_s']:.0f} values/s; collector x1"
        f" {c1['messages_per_s']:.0f} msg/s {c1['values_per_s']:.0f} values/s"
        f" ({c1['cpu_us_per_message']} us/msg, lost {c1['lost']}, cores {c1.get('cores')},"
        f" machine ceiling {c1.get('machine_ceiling_messages_per_s')} msg/s)"
        f" = {c1['vs_raw_subscriber']} of best stock"
        f" raw sub ({c1['vs_raw_subscriber_lean']} of lean), {c1['vs_raw_influx_values']} of raw"
        f" influx; x{scale}"
        f" {cn['messages_per_s']:.0f} msg/s (lost {cn['lost']}) = {cn['vs_raw_subscriber']},"
        f" {cn['vs_raw_influx_values']}",
        flush=True,
    )


def main() -> None:
    """Run both scenarios and print (and save) the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000, help="single-reading messages")
    parser.add_argument("--gateway-messages", type=int, default=2000, help="100-reading batches")
    parser.add_argument("--scale", type=int, default=2, help="collector processes for scale-out")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--only", choices=("single", "gateway", "shapes"), help="one only")
    parser.add_argument(
        "--shape-messages",
        type=int,
        default=20_000,
        help="single-reading messages per documented shape",
    )
    parser.add_argument("--shape-gateway-messages", type=int, default=400,
                        help="100-reading batches per documented gateway shape")  # fmt: skip
    parser.add_argument("--json", help="default bench/results/ingest.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="equipmon-ingest-") as tmp:
        folder = Path(tmp)
        broker = MosquittoServer(folder / "mosquitto")
        influx = InfluxDBServer(folder / "influxdb")
        broker.start()
        influx.start()
        try:
            results: dict[str, Any] = {
                "note": "2 shared cores, other work running: wall-clock figures are noisy; "
                "ratios are taken within a round, medians over rounds",
                "command": " ".join(["python -m bench.ingest", *sys.argv[1:]]),
            }
            for kind, count in (("single", args.messages), ("gateway", args.gateway_messages)):
                if args.only in (None, kind):
                    results[kind] = scenario(broker, influx.url, kind, messages=count,
                                             folder=folder, scale=args.scale,
                                             rounds=args.rounds,
                                             influx_pid=influx.pid)  # fmt: skip
            if args.only in (None, "shapes"):
                samples = []
                for number in range(args.rounds):
                    samples.append(shapes_round(
                        broker, influx.url, messages=args.shape_messages,
                        gateway_messages=args.shape_gateway_messages, folder=folder,
                        influx_pid=influx.pid))  # fmt: skip
                    shapes_summary(f"round {number + 1}", samples[-1])
                results["shapes"] = {"median": medians(samples), "rounds": samples}
                shapes_summary("median", results["shapes"]["median"])
        finally:
            broker.stop()
            influx.stop()
    report("ingest", results, args.json)


if __name__ == "__main__":
    main()
