"""MQTT publisher for one device or gateway: paho-mqtt 2.x, MQTT v5, QoS 1, persistent session.

Messages go from a bounded outbox to paho in a window: at most ``window`` publishes are
unacknowledged at a time, so a backfill never queues hundreds of thousands of messages in
paho's memory, and a broker outage fills the window and then the outbox (which blocks in
backfill and drops oldest-first in live modes). paho resends unacknowledged QoS 1 messages
after it reconnects.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sims.engine import Sample
from device_sims.formats import json_single, line_protocol
from device_sims.transports.base import Outbox
from device_sims.transports.batching import Batcher

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 3600  # broker keeps our session (and our QoS 1 state) for an hour offline


class MqttError(RuntimeError):
    """The broker refused us for good (bad credentials, not authorised)."""


def topic_for(prefix: str, site: str, device: str, fmt: str) -> str:
    """``<prefix>/<site>/<asset or gateway>/telemetry[/lp]``."""
    return f"{prefix}/{site}/{device}/telemetry" + ("/lp" if fmt == "lp" else "")


class MqttPublisher:
    """One MQTT client: a single asset, or a gateway batching several assets."""

    def __init__(
        self,
        client_id: str,
        host: str,
        port: int,
        *,
        prefix: str = "equipmon",
        fmt: str = "json",
        gateway_id: str | None = None,
        batch_size: int = 50,
        batch_age_ns: int = 5_000_000_000,
        window: int = 200,
        buffer: int = 10_000,
        block: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.host, self.port = host, port
        self.prefix, self.fmt, self.gateway_id = prefix, fmt, gateway_id
        self.window = window
        self.batcher = Batcher(fmt, batch_size, batch_age_ns) if gateway_id else None
        self.outbox: Outbox[tuple[str, bytes]] = Outbox(buffer, block=block)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=15)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._cond = threading.Condition()
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{client_id}", daemon=True)
        self.connected = threading.Event()
        self.error: str | None = None
        self.counters = {"published": 0, "acked": 0, "connects": 0}

    def start(self) -> None:
        """Connect (asynchronously; paho keeps reconnecting) and start the sender."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()
        self._thread.start()

    def send(self, sample: Sample) -> None:
        """Queue one reading (or add it to the gateway batch)."""
        if self.batcher is None:
            lp = self.fmt == "lp"
            payload = line_protocol(sample).encode() if lp else json_single(sample)
            topic = topic_for(self.prefix, sample.site, sample.asset, self.fmt)
            self.outbox.put((topic, payload))
            return
        with self._lock:
            batches = self.batcher.add(sample)
        self._queue_batches(batches)

    def tick(self, now_ns: int) -> None:
        """Close gateway batches that are old enough."""
        if self.batcher is not None:
            with self._lock:
                batches = self.batcher.due(now_ns)
            self._queue_batches(batches)

    def _queue_batches(self, batches: list[Any]) -> None:
        for batch in batches:
            topic = topic_for(self.prefix, batch.site, self.gateway_id or "", self.fmt)
            self.outbox.put((topic, batch.payload))

    def flush(self, timeout_s: float) -> bool:
        """Close batches, wait for the outbox to drain and every publish to be acknowledged."""
        if self.batcher is not None:
            with self._lock:
                batches = self.batcher.drain()
            self._queue_batches(batches)
        if not self.outbox.wait_empty(timeout_s):
            return False
        with self._cond:
            return self._cond.wait_for(lambda: not self._unacked, timeout_s)

    def close(self) -> None:
        """Disconnect cleanly and stop threads."""
        self._stop.set()
        self.outbox.close()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.client.disconnect()
        self.client.loop_stop()

    def stats(self) -> dict[str, int]:
        """Publish counters and buffer state."""
        with self._cond:
            unacked = len(self._unacked)
        return {
            **self.counters,
            "unacked": unacked,
            "buffered": len(self.outbox),
            "dropped": self.outbox.dropped,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self.outbox.peek(0.5)
            if item is None:
                continue
            with self._cond:
                # The window: wait for acknowledgements before handing paho more.
                while len(self._unacked) >= self.window and not self._stop.is_set():
                    self._cond.wait(0.5)
            if self._stop.is_set():
                return
            # Never hold our lock while calling paho: paho calls on_publish holding its own.
            topic, payload = item
            info = self.client.publish(topic, payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("%s: publish failed (%s); will retry", self.client_id, info.rc)
                self._stop.wait(0.5)
                continue
            # paho keeps a NO_CONN QoS 1 message and sends it after reconnecting.
            with self._cond:
                if info.mid in self._early_acks:
                    self._early_acks.discard(info.mid)
                else:
                    self._unacked.add(info.mid)
            self.counters["published"] += 1
            self.outbox.done(item)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.error = f"broker refused {self.client_id}: {reason}"
            log.error("%s", self.error)
            if reason.value in (0x86, 0x87, 0x8C):  # bad credentials, not authorised, bad auth
                client.disconnect()  # do not spin on credentials that will never work
                self._stop.set()
            return
        self.counters["connects"] += 1
        self.error = None
        self.connected.set()
        log.info(
            "%s connected to %s:%d (session present: %s)",
            self.client_id,
            self.host,
            self.port,
            flags.session_present,
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("%s disconnected (%s); paho reconnects", self.client_id, reason)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._cond:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)  # acknowledged before publish() returned
            self.counters["acked"] += 1
            self._cond.notify_all()
