"""Chaos: 100,000 readings while the collector is SIGKILLed twice, InfluxDB is down for 30 s and
the broker restarts; afterwards every reading is in InfluxDB exactly once with the right values."""

from __future__ import annotations

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
        assert not [
            k for k in metrics if k.startswith('equipmon_collector_lifetime_total{name="dead')
        ]
        assert metrics["equipmon_collector_healthy"] == 1
        print(
            f"chaos: spooled={spooled:.0f} written={written:.0f} (duplicates {spooled - COUNT:.0f})"
        )
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        collector.stop()
