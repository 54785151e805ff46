"""The writer against a real InfluxDB: bad points isolated, fatal errors loud, retries honoured."""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

import pytest

from collector.metrics import Metrics
from collector.settings import WriterSettings
from collector.spool import Spool, SpoolEntry
from collector.writer import Writer
from telemetry.errors import InfluxRetryableError
from telemetry.influx.client import InfluxClient, quote_ident
from telemetry.influx.settings import InfluxSettings
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, wait_for


def test_a_rejected_point_is_isolated_and_dead_lettered(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
) -> None:
    # 'temp' already exists as a string field, so InfluxDB refuses a float 'temp' (type conflict).
    influx_client.write_lines(f'telemetry,asset=x,site=plant-a temp="hot" {T0}'.encode())
    records = [
        {"asset": f"a{k}", "time": T0 + k, "sensors": {"temp": 1.0} if k == 7 else {"v": float(k)}}
        for k in range(20)
    ]
    service = make_collector()
    topic = telemetry_topic("plant-a", "gw-1", prefix=topic_prefix)
    publisher.publish(topic, json.dumps({"readings": records}).encode())
    publisher.flush()
    wait_for(lambda: service.spool.totals().get("dead_letters:influx_rejected") == 1, 20, "dlq")
    assert count_and_sum(influx_client) == (19, float(sum(range(20)) - 7))
    (letter,) = service.spool.dead_letters(10)
    assert letter.reason == "influx_rejected"
    assert letter.topic == topic
    assert letter.payload.startswith(b"telemetry,asset=a7,site=plant-a temp=1.0 ")
    assert "conflict" in letter.detail
    assert service.spool.totals()["readings_written"] == 19
    assert service.spool.rows == 0


def test_parallel_requests_write_everything_and_still_isolate_a_bad_point(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
) -> None:
    # 'temp' exists as a string field: the float 'temp' of message 33 is refused by InfluxDB.
    influx_client.write_lines(f'telemetry,asset=x,site=plant-a temp="hot" {T0}'.encode())
    # Rows of at most 7 readings, 3 requests in flight: a batch spans several parallel requests.
    service = make_collector(
        writer={"batch_max_readings": 7, "parallel_requests": 3},
        spool={"commit_interval_ms": 200},
    )
    topics = [telemetry_topic("plant-a", f"pump-{k % 3}", prefix=topic_prefix) for k in range(60)]
    for k, topic in enumerate(topics):
        sensors = {"temp": 1.0} if k == 33 else {"v": float(k)}
        publisher.publish(topic, json.dumps({"time": T0 + k, "sensors": sensors}).encode())
    publisher.flush()
    wait_for(lambda: service.spool.totals().get("readings_written") == 59, 30, "59 written")
    wait_for(lambda: service.spool.rows == 0, 10, "an empty spool")
    assert count_and_sum(influx_client) == (59, float(sum(range(60)) - 33))
    (letter,) = service.spool.dead_letters(10)
    assert (letter.reason, letter.topic) == ("influx_rejected", topics[33])
    assert letter.payload == f"telemetry,asset=pump-0,site=plant-a temp=1.0 {T0 + 33}".encode()
    assert service.spool.totals()["readings_written"] == 59


def test_fatal_error_turns_unhealthy_keeps_the_spool_and_recovers(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_settings: InfluxSettings,
    topic_prefix: str,
) -> None:
    missing = influx_settings.model_copy(update={"database": f"{influx_settings.database}_late"})
    service = make_collector(
        influx={"database": missing.database}, writer={"create_database": False}
    )
    assert service.http is not None
    health_url = f"http://127.0.0.1:{service.http.port}/healthz"
    topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
    for i in range(10):
        publisher.publish(topic, json.dumps({"time": T0 + i, "sensors": {"v": float(i)}}).encode())
    publisher.flush()
    wait_for(lambda: not service.health()[0], 20, "unhealthy")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(health_url, timeout=2)
    assert info.value.code == 503
    problem = json.loads(info.value.read())["problems"][0]
    assert "database not found" in problem
    assert f'CREATE DATABASE "{missing.database}"' in problem  # what to run
    assert service.spool.readings == 10  # nothing lost, nothing dead-lettered
    client = InfluxClient(missing)
    client.ensure_database()
    try:
        wait_for(lambda: service.spool.readings == 0, 20, "the spool drained")
        assert count_and_sum(client) == (10, 45.0)
        assert service.health()[0]
        with urllib.request.urlopen(health_url, timeout=2) as response:
            assert response.status == 200
    finally:
        client.execute(f"DROP DATABASE {quote_ident(missing.database)}")
        client.close()


def test_a_missing_database_is_created_when_the_credentials_allow(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_settings: InfluxSettings,
    topic_prefix: str,
) -> None:
    missing = influx_settings.model_copy(update={"database": f"{influx_settings.database}_new"})
    client = InfluxClient(missing)
    try:
        service = make_collector(influx={"database": missing.database})
        topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
        for i in range(10):
            body = {"time": T0 + i, "sensors": {"v": float(i)}}
            publisher.publish(topic, json.dumps(body).encode())
        wait_for(lambda: service.spool.totals().get("readings_written") == 10, 20, "written")
        assert count_and_sum(client) == (10, 45.0)
        assert service.health()[0]
    finally:
        client.execute(f"DROP DATABASE {quote_ident(missing.database)}")
        client.close()


class _Flaky:
    """A sink failing with 429 + Retry-After before it accepts."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.failures = 2

    def write_lines(self, body: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise InfluxRetryableError("429 too many requests", status=429, retry_after=7.0)
        self.bodies.append(body)


def test_retry_after_is_a_floor_and_data_stays_until_confirmed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    spool.append([SpoolEntry("t", b"telemetry,asset=a,site=s v=1.0 1", 1, 1)])
    sink = _Flaky()
    writer = Writer(
        spool,
        sink,
        WriterSettings(retry_min_s=0.1, retry_max_s=1.0),
        Metrics(),
        rng=random.Random(1),
    )
    for _ in range(2):  # 429 twice: the delay honours Retry-After, the row stays
        delay = writer._attempt()
        assert delay is not None
        assert delay >= 7.0
        assert spool.rows == 1
    assert writer._attempt() == 0.0
    assert sink.bodies == [b"telemetry,asset=a,site=s v=1.0 1"]
    assert spool.rows == 0
    assert spool.totals()["readings_written"] == 1
    spool.close()
