"""Chaos: 100,000 readings while the collector is SIGKILLed twice, InfluxDB is down for 30 s and
the broker restarts; afterwards every reading is in InfluxDB exactly once with the right values,
and every bad message among them is one dead letter (issue 15 item 9: redeliveries after the
kills were stored again, 1-27 duplicates per run)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from telemetry.influx.client import InfluxClient
from tests.collector.helpers import (
    CollectorProcess,
    collector_config,
    count_and_sum,
    new_port,
    scrape,
    wait_for,
)

COUNT = 100_000
RATE = 2000.0  # readings/s: about 50 s of publishing, so every fault hits live traffic
BAD_EVERY = 20  # a bad message after every 20 good ones: ~940 in all, throughout


def _stored_dead_letters(spool: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(spool) as db:
        return [
            (str(t), bytes(p)) for t, p in db.execute("SELECT topic, payload FROM dead_letters")
        ]


def _at(started: float, t: float) -> None:
    """Wait for second ``t`` of the fault timeline (faults land at set points of live traffic)."""
    time.sleep(max(0.0, started + t - time.monotonic()))  # pacing: the fault timeline


@pytest.mark.slow
def test_no_reading_lost_or_duplicated_under_faults(
    mosquitto: Any,
    influxdb: Any,
    influx_client: InfluxClient,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    port = new_port()
    config = collector_config(
        tmp_path / "collector.yaml",
        mqtt_url=mosquitto.url,
        influx=influx_client.settings,
        data_dir=tmp_path / "data",
        prefix=topic_prefix,
        client_id=f"chaos-{topic_prefix[-12:]}",
        http_port=port,
    )
    collector = CollectorProcess(config, tmp_path / "collector.log", port)
    collector.start()
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.collector.chaos_publisher",
            "--host",
            mosquitto.host,
            "--port",
            str(mosquitto.port),
            "--prefix",
            topic_prefix,
            "--count",
            str(COUNT),
            "--rate",
            str(RATE),
            "--bad-every",
            str(BAD_EVERY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.monotonic()
        _at(started, 5)
        collector.kill()  # SIGKILL #1: whatever was acked is in the spool
        _at(started, 7)
        collector.start()
        _at(started, 10)
        influxdb.stop()  # InfluxDB down for 30 s: the spool grows
        _at(started, 22)
        collector.kill()  # SIGKILL #2 with a full spool
        _at(started, 24)
        collector.start()
        _at(started, 40)
        influxdb.start()
        _at(started, 45)
        mosquitto.stop()  # graceful broker restart (persistence keeps sessions and queues)
        mosquitto.start()
        out, _ = publisher.communicate(timeout=150)
        assert publisher.returncode == 0, out
        assert out.startswith(f"DONE {COUNT} "), out
        bad = int(out.split()[4])

        wait_for(lambda: count_and_sum(influx_client)[0] >= COUNT, 90, f"{COUNT} readings")
        assert count_and_sum(influx_client) == (COUNT, float(sum(range(COUNT))))
        wait_for(
            lambda: scrape(port).get("equipmon_collector_spool_readings") == 0, 30, "empty spool"
        )
        metrics = scrape(port)
        written = metrics['equipmon_collector_lifetime_total{name="readings_written"}']
        spooled = metrics['equipmon_collector_lifetime_total{name="readings_spooled"}']
        # Every reading was written; redeliveries after the kills only add duplicates, which
        # InfluxDB's idempotent writes collapse (the count above is exact).
        assert written == spooled >= COUNT
        # Each bad message is one dead letter, redelivered or not (half wrong types, half
        # unknown topics), and the dead-letters table holds each once.
        dead = {
            k: v for k, v in metrics.items()
            if k.startswith('equipmon_collector_lifetime_total{name="dead')
        }  # fmt: skip
        prefix = 'equipmon_collector_lifetime_total{name="dead_letters:'
        assert dead == {
            f'{prefix}wrong_type"}}': (bad + 1) // 2,
            f'{prefix}unknown_topic"}}': bad // 2,
        }
        stored = _stored_dead_letters(tmp_path / "data" / "collector" / "spool.sqlite")
        assert len(stored) == len(set(stored)) == bad
        assert metrics["equipmon_collector_healthy"] == 1
        print(
            f"chaos: spooled={spooled:.0f} written={written:.0f} (duplicates {spooled - COUNT:.0f})"
            f", bad messages {bad}, dead letters {len(stored)}"
        )
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        collector.stop()
