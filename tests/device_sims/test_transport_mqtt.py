"""MQTT transport against a real Mosquitto: JSON, line protocol, gateway batches, reconnects."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_sims.engine import Sample
from device_sims.transports.mqtt import MqttPublisher

T0 = 1_795_392_000_000_000_000  # 2026-11-23T00:00:00Z


class Subscriber:
    """A plain paho subscriber collecting (topic, payload) pairs."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Any, topic_prefix: str) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{topic_prefix}/#")
    yield sub
    sub.close()


def _sample(asset: str, i: int) -> Sample:
    return Sample(
        "plant-a", asset, T0 + i * 10**9, {"vibration_rms": 1.5 + i, "bearing_temp": 40.0}
    )


def _publisher(mosquitto: Any, topic_prefix: str, client_id: str, **kwargs: Any) -> MqttPublisher:
    pub = MqttPublisher(client_id, mosquitto.host, mosquitto.port, prefix=topic_prefix, **kwargs)
    pub.start()
    assert pub.connected.wait(10)
    return pub


def test_json_messages_reach_a_subscriber(
    mosquitto: Any, topic_prefix: str, subscriber: Subscriber
) -> None:
    pub = _publisher(mosquitto, topic_prefix, f"sim-json-{topic_prefix[-12:]}", window=5)
    for i in range(30):
        pub.send(_sample("pump-01", i))
    assert pub.flush(15)
    pub.close()
    messages = subscriber.wait_for(30)
    assert len(messages) == 30
    topic, payload = messages[0]
    assert topic == f"{topic_prefix}/plant-a/pump-01/telemetry"
    body = json.loads(payload)
    assert body == {
        "site": "plant-a",
        "asset": "pump-01",
        "time": "2026-11-23T00:00:00.000000000Z",
        "sensors": {"vibration_rms": 1.5, "bearing_temp": 40.0},
    }
    assert [json.loads(p)["sensors"]["vibration_rms"] for _, p in messages] == [
        1.5 + i for i in range(30)
    ]


def test_line_protocol_messages_reach_a_subscriber(
    mosquitto: Any, topic_prefix: str, subscriber: Subscriber
) -> None:
    pub = _publisher(mosquitto, topic_prefix, f"sim-lp-{topic_prefix[-12:]}", fmt="lp")
    pub.send(_sample("fan-01", 0))
    assert pub.flush(10)
    pub.close()
    (topic, payload), *_ = subscriber.wait_for(1)
    assert topic == f"{topic_prefix}/plant-a/fan-01/telemetry/lp"
    assert payload == (
        b"telemetry,asset=fan-01,site=plant-a vibration_rms=1.5,bearing_temp=40.0 "
        b"1795392000000000000"
    )


def test_gateway_batches_name_each_asset(
    mosquitto: Any, topic_prefix: str, subscriber: Subscriber
) -> None:
    pub = _publisher(
        mosquitto, topic_prefix, f"sim-gw-{topic_prefix[-12:]}", gateway_id="gw-1", batch_size=4
    )
    for i in range(8):
        pub.send(_sample(f"conv-{i % 2}", i))
    assert pub.flush(10)
    pub.close()
    messages = subscriber.wait_for(2)
    assert [t for t, _ in messages] == [f"{topic_prefix}/plant-a/gw-1/telemetry"] * 2
    batch = json.loads(messages[0][1])
    assert batch["site"] == "plant-a"
    assert batch["precision"] == "ms"
    assert [r["asset"] for r in batch["readings"]] == ["conv-0", "conv-1", "conv-0", "conv-1"]
    assert batch["readings"][1]["time"] == T0 // 10**6 + 1000


def test_publisher_survives_a_broker_restart(mosquitto: Any, topic_prefix: str) -> None:
    pub = _publisher(mosquitto, topic_prefix, f"sim-restart-{topic_prefix[-12:]}", window=10)
    pub.send(_sample("pump-01", 0))
    assert pub.flush(10)
    mosquitto.stop()
    for i in range(1, 6):  # sent while the broker is down: kept, not lost
        pub.send(_sample("pump-01", i))
    mosquitto.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{topic_prefix}/#")
    try:
        assert pub.flush(30), pub.stats()
        received = sub.wait_for(5)
        values = sorted(json.loads(p)["sensors"]["vibration_rms"] for _, p in received)
        assert values[-5:] == [2.5, 3.5, 4.5, 5.5, 6.5]
        assert pub.stats()["connects"] >= 2
    finally:
        sub.close()
        pub.close()
