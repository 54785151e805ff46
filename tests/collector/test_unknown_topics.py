"""Unknown topics under the prefix are dead-lettered and counted, not lost (issue 15 item 8).

Before, the collector subscribed to ``<prefix>/+/+/telemetry[/lp]`` only: a gateway publishing
under the prefix on another topic got PUBACK "no matching subscribers" and its data was gone.
Now it subscribes to the whole prefix (``<prefix>/#``, or ``<prefix>/<site>/#`` with
``mqtt.site``, inside ``$share/<group>/`` with a shared group), and deploy/mosquitto/acl lets
the collector user read the whole prefix while gateways stay on their own site.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.service import CollectorService
from collector.settings import CollectorSettings
from stack.broker_auth import (
    ACL_FILE,
    COLLECTOR_USER,
    BrokerUsers,
    broker_users,
    write_password_file,
)
from stack.mosquitto import MosquittoServer
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, scrape, wait_for

UNKNOWN = "equipmon_collector_messages_unknown_topic_total"
NOT_AUTHORIZED = 0x87


def _unknown_topics(prefix: str) -> list[str]:
    return [
        f"{prefix}/plant-a/pump-01/status",  # a status topic beside telemetry
        f"{prefix}/plant-a/pump-01/telemetry/csv",  # a payload format we do not know
        f"{prefix}/plant-a/pump-01/telemetry/lp/extra",  # one level too many
        f"{prefix}/plant-a",  # a site with nothing below it
        f"{prefix}/config",  # right under the prefix
    ]


def test_messages_on_unknown_topics_under_the_prefix_are_dead_lettered_and_counted(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
) -> None:
    service = make_collector(log={"dead_letter_log_interval_s": 60.0})
    assert service.http is not None
    assert scrape(service.http.port)[UNKNOWN] == 0  # exported from the start, for alerts
    good_topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
    unknown = _unknown_topics(topic_prefix)
    for i, topic in enumerate(unknown):
        publisher.publish(good_topic, json.dumps({"time": T0 + i, "sensors": {"v": 1.0}}).encode())
        publisher.publish(topic, json.dumps({"sensors": {"v": float(i)}}).encode())
    publisher.publish(f"{topic_prefix}-other/plant-a/pump-01/status", b"not ours")
    publisher.flush()

    wait_for(lambda: len(service.spool.dead_letters(100)) >= len(unknown), 10, "dead letters")
    letters = list(reversed(service.spool.dead_letters(100)))
    assert [(d.reason, d.topic) for d in letters] == [("unknown_topic", t) for t in unknown]
    assert [d.payload for d in letters] == [
        json.dumps({"sensors": {"v": float(i)}}).encode() for i in range(len(unknown))
    ]
    wait_for(lambda: count_and_sum(influx_client)[0] >= len(unknown), 30, "good readings")
    assert count_and_sum(influx_client) == (len(unknown), float(len(unknown)))
    metrics = scrape(service.http.port)
    assert metrics[UNKNOWN] == len(unknown)
    assert metrics['equipmon_collector_dead_letters_total{reason="unknown_topic"}'] == len(unknown)
    assert metrics['equipmon_collector_lifetime_total{name="dead_letters:unknown_topic"}'] == len(
        unknown
    )
    # Every message is acknowledged once its dead letter is committed (none stays in flight).
    wait_for(
        lambda: (
            service.metrics.registry.get_sample_value(
                "equipmon_collector_messages_acknowledged_total"
            )
            == 2 * len(unknown)
        ),
        10,
        "every message acknowledged",
    )


def test_a_site_split_and_a_shared_group_subscribe_to_their_site_only(
    make_collector: CollectorFactory, publisher: Publisher, topic_prefix: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    service = make_collector(mqtt={"site": "plant-a", "shared_group": group})
    assert service.source.filters == [f"$share/{group}/{topic_prefix}/plant-a/#"]
    publisher.publish(f"{topic_prefix}/plant-b/fan-01/status", b"for the plant-b collector")
    publisher.publish(f"{topic_prefix}/plant-a/fan-01/status", b"ours")
    publisher.flush()
    wait_for(lambda: bool(service.spool.dead_letters(10)), 10, "the plant-a dead letter")
    # The broker hands a subscriber its messages in order: the plant-b message, published
    # first, would have arrived before the plant-a one.
    assert [(d.topic, d.payload) for d in service.spool.dead_letters(10)] == [
        (f"{topic_prefix}/plant-a/fan-01/status", b"ours")
    ]


def test_a_retained_message_on_an_unknown_topic_is_one_dead_letter_across_restarts(
    make_collector: CollectorFactory, publisher: Publisher, topic_prefix: str
) -> None:
    status = f"{topic_prefix}/plant-a/gw-1/status"
    info = publisher.client.publish(status, b"online", qos=1, retain=True)
    info.wait_for_publish(10)
    client_id = f"collector-retained-{uuid.uuid4().hex[:8]}"
    first = make_collector("c1", mqtt={"client_id": client_id})
    wait_for(lambda: bool(first.spool.dead_letters(10)), 10, "the retained message's dead letter")
    first.stop(flush_s=0)
    again = make_collector("c1", mqtt={"client_id": client_id})  # same session, same spool
    # A barrier: the broker queues retained messages for us before it sends the SUBACK we
    # waited for, and it keeps a client's messages in order, so once this reading is committed
    # a resent retained message would have been received and committed too.
    publisher.publish(telemetry_topic("plant-a", "pump-01", prefix=topic_prefix),
                      json.dumps({"time": T0, "sensors": {"v": 1.0}}).encode())  # fmt: skip
    wait_for(lambda: again.spool.totals().get("readings_spooled") == 1, 10, "the barrier")
    received = "equipmon_collector_messages_received_total"
    assert again.metrics.registry.get_sample_value(received) == 1  # the barrier only
    assert [(d.reason, d.topic) for d in again.spool.dead_letters(10)] == [
        ("unknown_topic", status)
    ]
    publisher.client.publish(status, b"", qos=1, retain=True).wait_for_publish(10)


def test_the_presence_topic_may_not_be_under_the_telemetry_prefix() -> None:
    with pytest.raises(ValueError, match=r"mqtt\.presence_topic"):
        CollectorSettings(mqtt={"topic_prefix": "equipmon", "presence_topic": "equipmon/c"})


# -- the shipped ACL (deploy/mosquitto/acl, also the local stack's) ------------------------------


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MosquittoServer, BrokerUsers]]:
    """A broker running deploy/mosquitto/acl with its users (module-scoped: the ACL's topics
    are the real ``equipmon/...`` ones, so no other test may share this broker)."""
    data = tmp_path_factory.mktemp("acl-broker")
    users = broker_users(data)
    broker = MosquittoServer(
        data / "mosquitto",
        password_file=write_password_file(users, data / "mosquitto" / "passwd"),
        acl_file=ACL_FILE,
    )
    broker.start()
    yield broker, users
    broker.stop()


def _puback_reason(broker: MosquittoServer, user: str, password: str, topic: str) -> int:
    """Publish once as ``user``; the PUBACK's reason code."""
    done = threading.Event()
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)

    def on_publish(c: Any, u: Any, mid: int, reason: Any, properties: Any) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, b'{"sensors": {"v": 1.0}}', qos=1)
        assert done.wait(10), "no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_the_shipped_acl_lets_the_collector_read_the_whole_prefix_and_keeps_gateways_to_their_site(
    secured: tuple[MosquittoServer, BrokerUsers],
    influx_settings: InfluxSettings,
    tmp_path: Path,
) -> None:
    broker, users = secured
    service = CollectorService(
        CollectorSettings(
            data_dir=str(tmp_path / "c"),
            mqtt={
                "url": broker.url,
                "client_id": f"collector-acl-{uuid.uuid4().hex[:8]}",
                "username": COLLECTOR_USER,
                "password": users.collector_password,
            },
            influx=influx_settings.model_dump(),
            http={"port": 0},
        )
    )
    service.start()
    gateway = Publisher(
        broker.host,
        broker.port,
        f"gw-a-{uuid.uuid4().hex[:8]}",
        auth=("gw-plant-a-1", users.passwords["gw-plant-a-1"]),
    )
    try:
        assert service.source.subscribed.wait(10), "collector did not subscribe"
        assert service.source.filters == ["equipmon/#"]
        gateway.publish("equipmon/plant-a/pump-01/status", b"online")
        gateway.flush()
        wait_for(lambda: bool(service.spool.dead_letters(10)), 10, "the status dead letter")
        letter = service.spool.dead_letters(10)[0]
        assert (letter.reason, letter.topic, letter.payload) == (
            "unknown_topic",
            "equipmon/plant-a/pump-01/status",
            b"online",
        )
        # Gateways stay on their own site, whatever the topic under it.
        password = users.passwords["gw-plant-a-1"]
        for topic in ("equipmon/plant-b/pump-01/status", "equipmon/config"):
            assert _puback_reason(broker, "gw-plant-a-1", password, topic) == NOT_AUTHORIZED
    finally:
        gateway.close()
        service.stop(flush_s=0)
