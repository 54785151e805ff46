"""The local Mosquitto and InfluxDB processes: real traffic, fault injection, lossless settings."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stack.process import port_open, wait_until
from telemetry.influx.client import InfluxClient
from tests.fixtures.factories import make_reading
from tests.fixtures.services import Service


class Collecting:
    """A persistent-session MQTT v5 subscriber that records payloads."""

    def __init__(self, broker: Service, client_id: str, topic: str) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.broker, self.topic, self.client_id = broker, topic, client_id
        self.subscribed = threading.Event()  # set by the SUBACK of the latest connection
        self.client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        # A fresh paho client per connection: loop_start() on a reused client leaks a socketpair.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        client.on_message = self._on_message
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        return client

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append(bytes(message.payload))

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client = self._new_client()
        self.subscribed.clear()
        self.client.connect(self.broker.host, self.broker.port, clean_start=False, properties=props)
        self.client.loop_start()

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(broker: Service, topic: str, count: int) -> None:
    """Publish QoS 1 messages in windows and wait for every PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for start in range(0, count, 500):
        infos = [
            client.publish(topic, f"{i}".encode(), qos=1)
            for i in range(start, min(count, start + 500))
        ]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    client.disconnect()
    client.loop_stop()


def test_broker_queues_more_than_1000_messages_for_an_offline_client_across_a_restart(
    mosquitto: Service, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}/plant/pump/telemetry"
    subscriber = Collecting(mosquitto, f"collector-{topic_prefix[-12:]}", topic)
    subscriber.connect()
    # The subscription must be in the broker's session before going offline.
    assert subscriber.subscribed.wait(10), "no SUBACK"
    subscriber.disconnect()

    publish_all(mosquitto, topic, 3_000)  # 3x Mosquitto's default max_queued_messages
    mosquitto.stop()  # graceful: the queue is saved to the persistence file
    mosquitto.start()

    subscriber.connect()
    wait_until(lambda: len(subscriber.received) >= 3_000, timeout=30, what="3,000 queued messages")
    subscriber.disconnect()
    assert sorted(int(p) for p in subscriber.received) == list(range(3_000))


def test_kill_and_start_are_real(mosquitto: Service, influxdb: Service) -> None:
    mosquitto.kill()
    influxdb.kill()
    assert not port_open(mosquitto.host, mosquitto.port)
    assert not port_open(influxdb.host, influxdb.port)
    mosquitto.start()
    influxdb.start()
    assert port_open(mosquitto.host, mosquitto.port)
    assert port_open(influxdb.host, influxdb.port)


def test_each_test_gets_its_own_influx_database(influx_client: InfluxClient) -> None:
    assert influx_client.read_readings() == []
    influx_client.write_readings([make_reading()])
    assert len(influx_client.read_readings()) == 1
