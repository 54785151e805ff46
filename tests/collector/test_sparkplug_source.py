"""The Sparkplug B host against Mosquitto and the simulated edge node (device_sims).

10,000 DDATA readings by alias with a sequence gap in the middle (a rebirth asked for and
answered, nothing guessed), a device death and rebirth, 20 malformed payloads: every resolvable
reading handed on once, every other message dead-lettered with its reason.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest

from collector.settings import MqttSettings
from collector.sources.feed import Feed
from collector.sources.sparkplug import STATE_MEASUREMENT, SparkplugSource
from collector.sparkplug.settings import SparkplugSettings
from collector.spool import DeadLetter, SpoolEntry
from device_sims.engine import Sample
from device_sims.transports.sparkplug import SparkplugEdgeNode
from telemetry.codecs.line_protocol import decode_line_protocol
from tests.collector.helpers import wait_for


class Gathered:
    """What the host hands to the committer: readings (decoded back), states, dead letters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0  # the feed's count, bumped by the source
        self.bodies: list[bytes] = []
        self.dead: list[DeadLetter] = []

    def submit(self, items: Sequence[SpoolEntry | DeadLetter], tokens: Sequence[object]) -> None:
        with self.lock:
            for item in items:
                if isinstance(item, SpoolEntry):
                    self.bodies.append(item.body)
                else:
                    self.dead.append(item)

    def lines(self, measurement: str) -> list[bytes]:
        with self.lock:
            bodies = list(self.bodies)
        return [
            line
            for body in bodies
            for line in body.splitlines()
            if line.startswith(measurement.encode() + b",")
        ]

    def readings(self) -> list[Any]:
        return [r for line in self.lines("telemetry") for r in decode_line_protocol(line)]

    def reasons(self) -> Counter[str]:
        with self.lock:
            return Counter(d.reason for d in self.dead)


@pytest.fixture
def group() -> str:
    return f"plant-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def host(mosquitto: Any, group: str) -> Iterator[tuple[SparkplugSource, Gathered]]:
    gathered = Gathered()
    source = SparkplugSource(
        SparkplugSettings(enabled=True, groups=[group], host_id=f"host-{group}"),
        MqttSettings(url=mosquitto.url, client_id=f"collector-{group}"),
        lambda name, kind, ack: cast(Feed, gathered),  # only its submit is used
    )
    source.start()
    wait_for(source.subscribed.is_set, 15, "the Sparkplug subscriptions")
    yield source, gathered
    source.stop()


def _node(mosquitto: Any, group: str, primary: str | None) -> SparkplugEdgeNode:
    node = SparkplugEdgeNode(
        mosquitto.host, mosquitto.port, group=group, edge_node="gw-1", primary_host=primary
    )
    node.start()
    return node


def _sample(group: str, i: int, device: str = "pump-01") -> Sample:
    base = time.time_ns() - 3_600_000_000_000  # an hour ago, a millisecond apart
    return Sample(group, device, base + i * 1_000_000, {"flow": float(i), "pressure": 2.0})


def test_10000_readings_a_sequence_gap_a_death_and_20_bad_payloads(
    mosquitto: Any, group: str, host: tuple[SparkplugSource, Gathered]
) -> None:
    source, gathered = host
    node = _node(mosquitto, group, primary=f"host-{group}")
    wait_for(lambda: node.stats()["births"] >= 1, 15, "the edge node's NBIRTH")
    for i in range(5_000):
        node.send(_sample(group, i))
    node.skip_sequence(3)  # three messages "lost": the host must notice and ask for a rebirth
    for i in range(5_000, 10_000):
        node.send(_sample(group, i))
    wait_for(lambda: node.stats()["rebirths"] >= 1, 15, "the rebirth request to arrive")
    for i in range(20):
        node.publish_raw("DDATA", b"\x0a\xff\xff" + bytes([i]), device="pump-01")
    node.device_death("pump-01")
    node.send(_sample(group, 10_000))  # a new DBIRTH first, then the reading
    wait_for(lambda: len(gathered.readings()) >= 10_001, 30, "every resolvable reading")
    wait_for(lambda: gathered.reasons()["undecodable"] == 20, 15, "the 20 bad payloads")

    readings = [r for r in gathered.readings() if r.asset == "pump-01"]
    flows = Counter(r.values["flow"] for r in readings)
    assert sorted(flows) == [float(i) for i in range(10_001)]  # each one, nothing guessed
    assert max(flows.values()) == 1  # and once
    assert source.status.sequence_gaps >= 1
    assert source.status.rebirths_requested >= 1
    assert gathered.reasons() == Counter({"undecodable": 20})  # nothing else refused
    states = gathered.lines(STATE_MEASUREMENT)
    assert any(b"asset=pump-01" in line and b"online=0" in line for line in states)
    assert sum(b"asset=pump-01" in line and b"online=1" in line for line in states) >= 2
    node.close()


def test_data_before_a_birth_is_dead_lettered_and_a_rebirth_asked(
    mosquitto: Any, group: str, host: tuple[SparkplugSource, Gathered]
) -> None:
    _, gathered = host
    node = _node(mosquitto, group, primary=None)
    wait_for(lambda: node.stats()["births"] >= 1, 15, "the edge node's NBIRTH")
    node.send(_sample(group, 1))
    wait_for(lambda: len(gathered.readings()) == 1, 15, "the first reading")
    # A second host that joins now knows no aliases: it must not guess them.
    late = Gathered()
    other = SparkplugSource(
        SparkplugSettings(enabled=True, groups=[group], host_id=""),
        MqttSettings(url=mosquitto.url, client_id=f"late-{group}"),
        lambda name, kind, ack: cast(Feed, late),
    )
    other.start()
    try:
        wait_for(other.subscribed.is_set, 15, "the late host's subscriptions")
        rebirths = node.stats()["rebirths"]
        node.send(_sample(group, 2))
        wait_for(lambda: late.reasons()["no_birth"] == 1, 15, "the unresolved DDATA")
        wait_for(lambda: node.stats()["rebirths"] > rebirths, 15, "the late host's rebirth request")
        node.send(_sample(group, 3))
        wait_for(lambda: len(late.readings()) >= 1, 15, "the late host to resolve after rebirth")
        assert [r.values["flow"] for r in late.readings()] == [3.0]
    finally:
        other.stop()
        node.close()
