"""Backpressure: a full spool stops acknowledgements, the broker keeps the rest, nothing is lost."""

from __future__ import annotations

import json
from typing import Any

from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, wait_for

WINDOW = 50
MESSAGES = 2000


def test_full_spool_holds_acks_until_influxdb_returns(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    influxdb: Any,
    topic_prefix: str,
) -> None:
    influxdb.stop()
    service = make_collector(
        mqtt={"inflight_window": WINDOW},
        spool={"max_bytes": 20_000, "commit_max_messages": 20},
    )
    registry = service.metrics.registry

    def sample(name: str) -> float:
        return registry.get_sample_value(f"equipmon_collector_{name}") or 0.0

    topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
    for i in range(MESSAGES):
        body = {"time": T0 + i, "sensors": {"v": float(i), "temp": 20.0 + i % 7}}
        publisher.publish(topic, json.dumps(body).encode())
    publisher.flush()  # the broker has every message (and acknowledged it to the publisher)

    def write_errors() -> float:
        return sum(
            s.value
            for metric in registry.collect()
            if metric.name == "equipmon_collector_write_errors"
            for s in metric.samples
            if s.name.endswith("_total")
        )

    wait_for(lambda: sample("backpressure") == 1, 20, "backpressure")
    held = sample("messages_acknowledged_total")
    # Not a fixed wait: the writer fails three more times against the stopped InfluxDB (with its
    # backoff, over a second), and all that while nothing more may be acknowledged.
    failed = write_errors()
    wait_for(lambda: write_errors() >= failed + 3, 20, "three more failed writes")
    # Acks stopped; beyond them at most one held group, one window of waiting messages and one
    # read burst (at most a window too) were taken in.
    assert sample("messages_acknowledged_total") == held
    assert held < MESSAGES / 2
    assert sample("messages_received_total") <= held + 3 * WINDOW
    # The spool is bounded: at most one commit group beyond the limit.
    assert service.spool.bytes < 20_000 + 20 * 200

    influxdb.start()
    wait_for(lambda: count_and_sum(influx_client)[0] >= MESSAGES, 90, "the backlog in InfluxDB")
    assert count_and_sum(influx_client) == (MESSAGES, float(sum(range(MESSAGES))))
    wait_for(lambda: sample("backpressure") == 0, 10, "backpressure released")
    assert sample("messages_acknowledged_total") >= MESSAGES
