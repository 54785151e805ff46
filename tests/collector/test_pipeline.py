"""End to end against real Mosquitto and InfluxDB: JSON, batches and line protocol arrive intact."""

from __future__ import annotations

import json

from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, wait_for


def test_json_batch_and_line_protocol_reach_influxdb(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
) -> None:
    service = make_collector()
    json_topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
    for i in range(50):
        body = {"time": T0 + i, "sensors": {"v": float(i), "temp": 40.5}}
        publisher.publish(json_topic, json.dumps(body).encode())
    batch = {
        "precision": "ns",
        "readings": [
            {"asset": f"fan-{k}", "time": T0 + 1000 + k, "sensors": {"v": 1000.0 + k}}
            for k in range(20)
        ],
    }
    publisher.publish(
        telemetry_topic("plant-a", "gw-1", prefix=topic_prefix), json.dumps(batch).encode()
    )
    lp_topic = telemetry_topic("plant-b", "press-7", "lp", prefix=topic_prefix)
    lines = "\n".join(f"telemetry v={2000 + k}.5 {T0 + 2000 + k}" for k in range(10))
    publisher.publish(lp_topic, lines.encode())
    publisher.flush()

    expected = (
        sum(range(50)) + sum(1000.0 + k for k in range(20)) + sum(2000.5 + k for k in range(10))
    )
    wait_for(lambda: count_and_sum(influx_client)[0] >= 80, 30, "80 readings in InfluxDB")
    assert count_and_sum(influx_client) == (80, expected)
    lp = influx_client.read_readings(site="plant-b", asset="press-7")
    assert [r.time_ns for r in lp] == [T0 + 2000 + k for k in range(10)]
    wait_for(lambda: service.spool.rows == 0, 10, "an empty spool")
    totals = service.spool.totals()
    assert totals["readings_written"] == 80
    assert totals["messages_spooled"] == 52
