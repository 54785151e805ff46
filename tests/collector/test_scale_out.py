"""Scale-out: two collector processes in one shared subscription group split the load, lose none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.collector.helpers import (
    CollectorProcess,
    collector_config,
    count_and_sum,
    new_port,
    scrape,
    wait_for,
)

COUNT = 20_000


def _connected(port: int) -> bool:
    return scrape(port).get("equipmon_collector_mqtt_subscribed") == 1


def test_two_collectors_in_a_shared_group_share_the_load(
    mosquitto: Any,
    influx_settings: InfluxSettings,
    influx_client: InfluxClient,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    collectors: list[CollectorProcess] = []
    try:
        # The second member speaks MQTT 3.1.1: both protocol versions join one group.
        for name, protocol in (("a", "5"), ("b", "3.1.1")):
            port = new_port()
            config = collector_config(
                tmp_path / f"{name}.yaml",
                mqtt_url=mosquitto.url,
                influx=influx_settings,
                data_dir=tmp_path / name,
                prefix=topic_prefix,
                client_id=f"scale-{name}-{topic_prefix[-12:]}",
                http_port=port,
                mqtt={"shared_group": "collectors", "protocol": protocol},
            )
            collector = CollectorProcess(config, tmp_path / f"{name}.log", port)
            collector.start()
            collectors.append(collector)
        for c in collectors:
            wait_for(lambda: _connected(c.http_port), 10, "connected")  # noqa: B023 (waited now)
        out = subprocess.run(
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
                "1e9",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert out.startswith(f"DONE {COUNT} ")
        wait_for(lambda: count_and_sum(influx_client)[0] >= COUNT, 60, f"{COUNT} readings")
        assert count_and_sum(influx_client) == (COUNT, float(sum(range(COUNT))))
        received = [
            scrape(c.http_port)["equipmon_collector_messages_received_total"] for c in collectors
        ]
        messages = int(out.split()[2])
        assert sum(received) == messages  # each message went to exactly one member
        assert min(received) > messages * 0.1, received  # and both members did real work
    finally:
        for c in collectors:
            c.stop()
