"""MQTT source: paho-mqtt 2.x (callback API v2), QoS 1, persistent session, manual acks.

A message is acknowledged only after the group commit made it durable (``manual_ack=True``).
Acks carry the connection generation they were received on: after a reconnect, an ack for an
old packet id could acknowledge a different message the broker has since given that id, so
stale acks are dropped and the broker redelivers those messages (the spool de-duplicates
nothing; InfluxDB's idempotent writes make the replay harmless).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.committer import Pending
from collector.intake import Intake
from collector.metrics import Metrics
from collector.settings import MqttSettings
from collector.spool import DeadLetter
from telemetry.topics import subscription_filters

log = logging.getLogger(__name__)

# CONNACK reason codes that will not change by retrying: stop instead of spinning.
_REFUSED_FOR_GOOD = frozenset((0x84, 0x85, 0x86, 0x87, 0x8C))  # version, id, credentials, authz

ClientFactory = Callable[[MqttSettings], mqtt.Client]


def make_client(settings: MqttSettings) -> mqtt.Client:
    """A paho client configured from the settings (the default client factory)."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # v3.1.1 asks for a persistent session here; v5 says so with clean_start on connect.
        clean_session=None if v5 else False,
        reconnect_on_failure=True,
        manual_ack=True,
    )
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_file or None,
            certfile=settings.cert_file or None,
            keyfile=settings.key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.tls_insecure)
    client.reconnect_delay_set(
        min_delay=max(1, round(settings.reconnect_min_s)), max_delay=round(settings.reconnect_max_s)
    )
    return client


@dataclass(frozen=True, slots=True)
class AckToken:
    """What acknowledging a message needs: its packet id, QoS and connection generation."""

    mid: int
    qos: int
    generation: int


class MqttSource:
    """Subscribes to the telemetry topics and feeds decoded messages to the committer."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        intake: Intake,
        submit: Callable[[Pending], None],
        metrics: Metrics,
        client_factory: ClientFactory = make_client,
    ) -> None:
        self._settings = settings
        self._intake = intake
        self._submit = submit
        self._metrics = metrics
        self._client_factory = client_factory
        self._client: mqtt.Client | None = None
        self._generation = 0
        self._connects = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker confirmed our subscriptions
        self.refused: str | None = None
        self.filters = subscription_filters(
            settings.topic_prefix, settings.site, settings.shared_group or None
        )

    def start(self) -> None:
        """Connect in the background; paho reconnects with bounded backoff."""
        client = self._client_factory(self._settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        properties = None
        if self._settings.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._settings.session_expiry_s
            # Receive Maximum: how many unacknowledged messages the broker may have in flight to us.
            properties.ReceiveMaximum = self._settings.inflight_window
        client.connect_async(
            self._settings.host,
            self._settings.port,
            keepalive=self._settings.keepalive_s,
            clean_start=False
            if self._settings.protocol == "5"
            else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client = client
        client.loop_start()

    def stop(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker) and stop the network thread."""
        client = self._client
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._client = None

    def ack(self, tokens: Sequence[object]) -> int:
        """Acknowledge committed messages received on the current connection; returns how many."""
        acked = 0
        with self._lock:
            client = self._client
            for token in tokens:
                assert isinstance(token, AckToken)
                if (
                    client is None
                    or token.generation != self._generation
                    or not self.connected.is_set()
                ):
                    continue  # stale: the broker redelivers it on the new connection
                if token.qos > 0:
                    client.ack(token.mid, token.qos)
                acked += 1
        return acked

    # -- paho callbacks (network thread; they never raise) ------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s", self._settings.url, reason)
            if reason.value in _REFUSED_FOR_GOOD:
                self.refused = str(reason)
                client.disconnect()  # bad credentials do not get better by retrying
            return
        with self._lock:
            self._generation += 1
            self._connects += 1
            self.connected.set()
        self._metrics.connects.inc()
        self._metrics.connected.set(1)
        if self._connects > 1:
            self._metrics.reconnects.inc()
        if not flags.session_present:
            # Normal on the very first start; otherwise the broker lost our session and with
            # it anything queued for us while we were away (expiry too short, broker state lost).
            log.warning(
                "broker has no stored session for %s: messages queued while away may be lost",
                self._settings.client_id,
            )
        log.info("connected to %s; subscribing to %s", self._settings.url, self.filters)
        client.subscribe([(f, 1) for f in self.filters])

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._generation += 1
            self.connected.clear()
            self.subscribed.clear()
        self._metrics.connected.set(0)
        self._metrics.subscribed.set(0)
        if reason.is_failure:
            log.warning("disconnected from %s: %s; reconnecting", self._settings.url, reason)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for topic_filter, code in zip(self.filters, reason_codes, strict=False):
            if code.is_failure:
                log.error("subscription to %s refused: %s", topic_filter, code)
        self.subscribed.set()
        self._metrics.subscribed.set(1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._metrics.received.inc()
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)
        item = self._intake.process(topic, bytes(message.payload))
        if isinstance(item, DeadLetter):
            self._metrics.rejected.labels(item.reason).inc()
        with self._lock:
            generation = self._generation
        self._submit(Pending(item, AckToken(message.mid, message.qos, generation)))
