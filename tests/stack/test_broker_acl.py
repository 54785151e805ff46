"""The local broker runs compose's security model: logins, and each gateway only on its own site.

The ACL is deploy/mosquitto/acl itself (the file the compose broker mounts), so this test
checks the rules both deployments run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from stack.broker_auth import (
    ACL_FILE,
    COLLECTOR_USER,
    BrokerUsers,
    acl_users,
    broker_users,
    write_password_file,
)
from stack.mosquitto import MosquittoServer

NOT_AUTHORIZED = 0x87
BAD_USER_OR_PASSWORD = 0x86


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MosquittoServer, BrokerUsers]]:
    data = tmp_path_factory.mktemp("secured-broker")
    users = broker_users(data)
    broker = MosquittoServer(
        data / "mosquitto",
        password_file=write_password_file(users, data / "mosquitto" / "passwd"),
        acl_file=ACL_FILE,
    )
    broker.start()
    yield broker, users
    broker.stop()


@dataclass
class Session:
    """A connected MQTT v5 client that records its CONNACK, PUBACKs and messages."""

    client: mqtt.Client
    connack: list[ReasonCode] = field(default_factory=list)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)


def _eventually(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _session(broker: MosquittoServer, user: str | None, password: str | None) -> Session:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    session = Session(client)
    if user is not None:
        client.username_pw_set(user, password)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        session.connack.append(rc)

    def on_publish(
        c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties | None
    ) -> None:
        session.pubacks[mid] = rc

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        session.received.append(message.topic)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: object) -> None:
        session.subscribed.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    client.on_message, client.on_subscribe = on_message, on_subscribe
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert _eventually(lambda: bool(session.connack), 10)
    return session


def _close(session: Session) -> None:
    session.client.disconnect()
    session.client.loop_stop()


def test_acl_names_a_gateway_per_site_and_the_collector() -> None:
    users, sites = acl_users()
    assert COLLECTOR_USER in users
    assert sites == {"gw-plant-a-1": "plant-a", "gw-plant-b-1": "plant-b"}


def test_a_gateway_publishing_for_another_site_gets_an_mqtt5_not_authorised(
    secured: tuple[MosquittoServer, BrokerUsers],
) -> None:
    broker, users = secured
    collector = _session(broker, COLLECTOR_USER, users.collector_password)
    gateway = _session(broker, "gw-plant-a-1", users.passwords["gw-plant-a-1"])
    try:
        assert collector.connack[0].value == 0
        assert gateway.connack[0].value == 0
        collector.client.subscribe("equipmon/+/+/telemetry", qos=1)
        assert collector.subscribed.wait(10)
        own = gateway.client.publish("equipmon/plant-a/pump-01/telemetry", b"{}", qos=1)
        other = gateway.client.publish("equipmon/plant-b/fan-01/telemetry", b"{}", qos=1)
        assert _eventually(lambda: {own.mid, other.mid} <= gateway.pubacks.keys(), 10)
        assert gateway.pubacks[own.mid].value == 0
        # MQTT v5 tells the gateway why (v3.1.1 would PUBACK and silently drop the message).
        assert gateway.pubacks[other.mid].value == NOT_AUTHORIZED
        assert gateway.pubacks[other.mid].getName() == "Not authorized"
        assert _eventually(lambda: bool(collector.received), 10)
        assert collector.received == ["equipmon/plant-a/pump-01/telemetry"]
    finally:
        _close(collector)
        _close(gateway)


def test_a_gateway_receives_no_telemetry(secured: tuple[MosquittoServer, BrokerUsers]) -> None:
    """Mosquitto grants the subscription but delivers nothing the ACL does not let it read."""
    broker, users = secured
    collector = _session(broker, COLLECTOR_USER, users.collector_password)
    snoop = _session(broker, "gw-plant-b-1", users.passwords["gw-plant-b-1"])
    gateway = _session(broker, "gw-plant-a-1", users.passwords["gw-plant-a-1"])
    try:
        collector.client.subscribe("equipmon/+/+/telemetry", qos=1)
        snoop.client.subscribe("equipmon/#", qos=1)
        assert collector.subscribed.wait(10)
        assert snoop.subscribed.wait(10)
        gateway.client.publish("equipmon/plant-a/pump-02/telemetry", b"{}", qos=1)
        assert _eventually(lambda: bool(collector.received), 10)
        # A barrier instead of a wait: the broker routed the message to every subscriber before
        # the collector got it, and it writes a client's packets in order, so a SUBACK the snoop
        # asks for now arrives after the message would have (paho calls back in order too).
        snoop.subscribed.clear()
        snoop.client.subscribe("equipmon/barrier", qos=1)
        assert snoop.subscribed.wait(10)
        assert snoop.received == []
    finally:
        for session in (collector, snoop, gateway):
            _close(session)


@pytest.mark.parametrize(("user", "password"), [(None, None), ("gw-plant-a-1", "wrong-password")])
def test_anonymous_and_wrong_passwords_are_refused(
    secured: tuple[MosquittoServer, BrokerUsers], user: str | None, password: str | None
) -> None:
    broker, _ = secured
    session = _session(broker, user, password)
    try:
        assert session.connack[0].value in (NOT_AUTHORIZED, BAD_USER_OR_PASSWORD)
        assert session.connack[0].is_failure
    finally:
        _close(session)


def test_passwords_are_kept_per_data_folder_and_hashed_for_the_broker(tmp_path: Path) -> None:
    first = broker_users(tmp_path)
    assert broker_users(tmp_path).passwords == first.passwords
    assert oct((tmp_path / "mqtt-users.json").stat().st_mode & 0o777) == "0o600"
    passwd = write_password_file(first, tmp_path / "passwd").read_text()
    assert first.collector_password not in passwd
    assert f"{COLLECTOR_USER}:$7$" in passwd
    assert first.sim_auth().split(",")[0].startswith("plant-a=gw-plant-a-1:")
