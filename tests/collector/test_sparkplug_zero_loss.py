"""Zero loss for a Sparkplug stream, the Sparkplug way, through the real collector process.

A simulated edge node streams DDATA (QoS 0, as the specification requires) with the collector
as its primary host. The collector is SIGKILLed in the middle of the stream and kept down for
20 s: the broker publishes its offline STATE (its will), the edge node stores, and after the
restart it sends a new birth and then what it stored, as historical metrics. Every reading
the edge node produced is in InfluxDB once, with its own timestamp; the collector's /healthz
shows the Sparkplug source and InfluxDB the node's birth.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from device_sims.engine import Sample
from device_sims.transports.sparkplug import SparkplugEdgeNode
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.collector.helpers import CollectorProcess, collector_config, fetch, new_port, wait_for

READINGS = 3_000


@pytest.mark.slow
def test_a_sigkilled_collector_loses_no_sparkplug_reading(
    mosquitto: Any,
    influx_settings: InfluxSettings,
    influx_client: InfluxClient,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    group = f"plant-{uuid.uuid4().hex[:8]}"
    host_id = f"equipmon-{group}"
    port = new_port()
    config = collector_config(
        tmp_path / "collector.yaml",
        mqtt_url=mosquitto.url,
        influx=influx_settings,
        data_dir=tmp_path / "data",
        prefix=topic_prefix,
        client_id=f"collector-{group}",
        http_port=port,
        sparkplug={"enabled": True, "groups": [group], "host_id": host_id},
    )
    collector = CollectorProcess(config, tmp_path / "collector.log", port)
    collector.start()
    node = SparkplugEdgeNode(
        mosquitto.host, mosquitto.port, group=group, edge_node="gw-1", primary_host=host_id
    )
    node.start()
    start_ns = (time.time_ns() // 1_000_000 - 3_600_000) * 1_000_000  # Sparkplug keeps ms
    try:
        wait_for(lambda: node.stats()["births"] >= 1, 20, "the edge node's birth")
        for i in range(READINGS):
            node.send(Sample(group, "pump-01", start_ns + i * 10_000_000, {"flow": float(i)}))
            if i == READINGS // 3:
                collector.kill()  # SIGKILL in the middle of the stream
                wait_for(
                    lambda: node.stats()["buffered"] > 0 or _offline(node), 20, "offline STATE"
                )
            if i == 2 * READINGS // 3:
                time.sleep(20)  # pacing: the fault timeline, the collector down for 20 s
                collector.start()
            time.sleep(0.001)  # pacing: a stream at up to 1,000 readings/s, not one burst
        assert node.flush(60), "the edge node still stores readings"

        def stored() -> int:
            series = influx_client.query(
                f"SELECT COUNT(flow) FROM telemetry WHERE site = '{group}'"
            )
            return int(series[0].values[0][1]) if series and series[0].values else 0

        try:
            wait_for(lambda: stored() >= READINGS, 60, f"{READINGS} readings in InfluxDB")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {stored()} stored, edge node {node.stats()}") from None
        rows = influx_client.query(f"SELECT flow FROM telemetry WHERE site = '{group}'")
        values = [(int(t), v) for t, v in rows[0].values]
        assert len(values) == READINGS  # once each (a point written twice is one point)
        assert sorted(v for _, v in values) == [float(i) for i in range(READINGS)]
        assert all(t == start_ns + int(v) * 10_000_000 for t, v in values)  # own timestamps
        assert node.stats()["stored"] > 0  # the edge node did store while we were away
        health = json.loads(fetch(f"http://127.0.0.1:{port}/healthz") or "{}")
        assert health["sources"]["sparkplug"]["healthy"]
        births = influx_client.query(f"SELECT online FROM source_state WHERE site = '{group}'")
        assert births
        assert births[0].values[-1][1] == 1.0
    finally:
        node.close()
        collector.stop()


def _offline(node: SparkplugEdgeNode) -> bool:
    return not node._host_online
