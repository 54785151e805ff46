"""One dead letter per bad message, however often the broker delivers it (issue 15 item 9).

A collector that dies between the spool commit and the MQTT ack has its bad messages
redelivered: before, each redelivery was stored again (1-27 duplicates per chaos run). The
first collector here loses its PUBACKs (a paho client whose acks never leave, as if the process
were SIGKILLed right after each commit); the next one, with the same client id and spool, gets
every message again (the broker redelivers with DUP set and the same packet id) and must
acknowledge them without storing a second dead letter. The same bad payloads published again
are new messages and each gets its own.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from collector.settings import MqttSettings
from collector.sources.mqtt import make_client
from collector.sources.paho_fast import FastClient
from collector.spool import DeadLetter, Spool, message_identity
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, scrape, wait_for

BAD = 12


class _LostAcks(FastClient):
    """The collector's own client, except that its PUBACKs never reach the broker."""

    def ack_many(self, mids: Sequence[int]) -> None:
        """Drop them: the broker keeps the messages in flight for the session."""

    def ack(self, mid: int, qos: int) -> Any:
        """Drop it (the stock path; QoS 2)."""


class _LostAcksStock(mqtt.Client):
    """The same on the stock paho path (``mqtt.fast_path`` false)."""

    def ack(self, mid: int, qos: int) -> Any:
        """Drop it."""


def _losing_acks(settings: MqttSettings) -> Any:
    client = make_client(settings)
    # The same object, configured by the collector's factory, whichever client it made.
    client.__class__ = _LostAcks if isinstance(client, FastClient) else _LostAcksStock
    return client


def _bad(prefix: str) -> list[tuple[str, bytes]]:
    """Bad messages of several kinds (the payloads differ: a device's values change)."""
    json_topic = telemetry_topic("plant-a", "pump-01", prefix=prefix)
    lp_topic = telemetry_topic("plant-a", "pump-01", "lp", prefix=prefix)
    out: list[tuple[str, bytes]] = []
    for i in range(BAD):
        kind = i % 3
        if kind == 0:
            out.append((json_topic, json.dumps({"sensors": {"v": f"hot-{i}"}}).encode()))
        elif kind == 1:
            out.append((lp_topic, f"telemetry v={i}.0 notatime".encode()))
        else:
            out.append((f"{prefix}/plant-a/pump-01/status", f"status {i}".encode()))
    return out


def _counted(totals: dict[str, int]) -> int:
    return sum(v for k, v in totals.items() if k.startswith("dead_letters:"))


@pytest.mark.parametrize("broker_restart", [False, True], ids=["collector", "collector+broker"])
def test_a_bad_message_redelivered_after_its_commit_is_one_dead_letter(
    make_collector: CollectorFactory,
    publisher: Publisher,
    mosquitto: Any,
    topic_prefix: str,
    broker_restart: bool,
) -> None:
    client_id = f"collector-redelivery-{uuid.uuid4().hex[:8]}"
    good_topic = telemetry_topic("plant-a", "pump-02", prefix=topic_prefix)
    # Both on spool "c1" with one client id: the second is the first one restarted.
    first = make_collector("c1", client_factory=_losing_acks, mqtt={"client_id": client_id})
    bad = _bad(topic_prefix)
    for i, (topic, payload) in enumerate(bad):
        publisher.publish(good_topic, json.dumps({"time": T0 + i, "sensors": {"v": 1.0}}).encode())
        publisher.publish(topic, payload)
    publisher.flush()
    wait_for(lambda: len(first.spool.dead_letters(100)) == BAD, 10, "every dead letter committed")
    first.stop(flush_s=0)  # its acks never left: the broker still has all 24 in flight
    if broker_restart:
        mosquitto.stop()  # graceful: persistence keeps the session and what is in flight
        mosquitto.start()

    second = make_collector("c1", mqtt={"client_id": client_id})
    acknowledged = "equipmon_collector_messages_acknowledged_total"
    wait_for(
        lambda: second.metrics.registry.get_sample_value(acknowledged) == 2 * BAD,
        15,
        "every redelivered message acknowledged",
    )
    assert second.metrics.registry.get_sample_value(
        "equipmon_collector_messages_received_total"
    ) == (2 * BAD)  # each message came again
    letters = list(reversed(second.spool.dead_letters(100)))
    assert [(d.topic, d.payload) for d in letters] == bad  # each once, in order
    assert _counted(second.spool.totals()) == BAD
    assert second.http is not None
    metrics = scrape(second.http.port)
    assert not [k for k in metrics if k.startswith("equipmon_collector_dead_letters_total{")]
    assert metrics["equipmon_collector_dead_letters_redelivered_total"] == BAD
    assert metrics["equipmon_collector_messages_unknown_topic_total"] == 0  # counted by the first

    # The same payloads again are new messages (first deliveries): one dead letter each.
    for topic, payload in bad:
        publisher.publish(topic, payload)
    publisher.flush()
    wait_for(lambda: _counted(second.spool.totals()) == 2 * BAD, 10, "the new messages' letters")
    assert [(d.topic, d.payload) for d in reversed(second.spool.dead_letters(100))] == bad + bad
    assert scrape(second.http.port)["equipmon_collector_dead_letters_redelivered_total"] == BAD


# -- the spool's side, message by message -------------------------------------------------------


def _letter(
    packet_id: int, payload: bytes, *, dup: bool, topic: str = "p/s/a/telemetry"
) -> DeadLetter:
    identity = message_identity("c1", packet_id, dup, topic, payload)
    return DeadLetter(T0, "wrong_type", "", topic, payload, len(payload), identity)


def test_the_spool_stores_a_redelivery_once_and_a_repeated_payload_each_time(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.sqlite", dead_letter_max=1)  # keys outlive trimmed letters
    assert spool.append([], [_letter(7, b"x", dup=False)], messages=1) != []
    assert spool.append([], [_letter(7, b"x", dup=True)], messages=1) == []  # redelivered
    assert spool.append([], [_letter(7, b"y", dup=True)], messages=1) != []  # not that message
    assert spool.append([], [_letter(7, b"y", dup=False)], messages=1) != []  # id reused
    assert spool.append([], [_letter(8, b"y", dup=True)], messages=1) != []  # another id
    # A first delivery and its redelivery in one group (a reconnect before the commit): one.
    group = [_letter(9, b"z", dup=False), _letter(9, b"z", dup=True)]
    assert spool.append([], group, messages=2) == group[:1]
    # QoS 0 messages have no identity (never redelivered): each is stored.
    plain = DeadLetter(T0, "wrong_type", "", "t", b"x", 1)
    assert spool.append([], [plain, plain], messages=2) == [plain, plain]
    assert spool.totals()["dead_letters:wrong_type"] == 7
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite")  # keys are durable: a restart recognises it
    assert reopened.append([], [_letter(9, b"z", dup=True)], messages=1) == []
    assert reopened.totals()["mqtt_messages"] == 10
    reopened.close()


def test_a_key_older_than_the_horizon_names_another_message(tmp_path: Path) -> None:
    """An id Mosquitto gives again after a full turn: the old key is not that message's."""
    spool = Spool(tmp_path / "spool.sqlite", redelivery_horizon=100)
    assert spool.append([], [_letter(5, b"x", dup=False)], messages=1) != []
    spool.append([], [], messages=60)
    assert spool.append([], [_letter(5, b"x", dup=True)], messages=1) == []  # 61 ago: in reach
    spool.append([], [], messages=100)  # refreshed at 62; now 162
    assert spool.append([], [_letter(5, b"x", dup=True)], messages=1) != []
    spool.append([], [], messages=5000)  # expired keys are deleted every 4,096 messages
    assert spool.append([], [_letter(5, b"x", dup=True)], messages=1) != []
    spool.close()
    with sqlite3.connect(tmp_path / "spool.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM dead_letter_keys").fetchone()[0] == 1
