"""MQTT source: paho-mqtt 2.x (callback API v2), QoS 1, persistent session, manual acks.

A message is acknowledged only after the group commit made it durable (``manual_ack=True``).
Acks carry the connection generation they were received on: after a reconnect, an ack for an
old packet id could acknowledge a different message the broker has since given that id, so
stale acks are dropped and the broker redelivers those messages: InfluxDB's idempotent writes
make the replay of good readings harmless, and a bad message's dead letter carries its delivery's
identity (packet id, DUP flag, digest), by which the spool recognises a redelivery and stores no
second one (``collector.redelivery``).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.intake import Intake
from collector.metrics import Metrics
from collector.settings import MqttSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import AckFn, Feed
from collector.sources.paho_fast import FastClient, Publish, missing_internals, supported
from collector.spool import DeadLetter, message_identity

log = logging.getLogger(__name__)

# CONNACK reason codes that will not change by retrying: stop instead of spinning.
_REFUSED_FOR_GOOD = frozenset((0x84, 0x85, 0x86, 0x87, 0x8C))  # version, id, credentials, authz
# DISCONNECT "Session taken over": another process connected with our client id. Reconnecting
# would take it back, and the two would flap for ever; the newer one carries on, we stop.
_SESSION_TAKEN_OVER = 0x8E

ClientFactory = Callable[[MqttSettings], mqtt.Client]

_DISCONNECT_WAIT_S = 2.0
_TOPICS_MAX = 100_000  # at shutdown, time for queued acks and the DISCONNECT to go out


def make_client(settings: MqttSettings) -> mqtt.Client:
    """A paho client configured from the settings (the default client factory).

    The lean-receive subclass when the installed paho has the internals it needs (see
    ``paho_fast``), else the stock client.
    """
    v5 = settings.protocol == "5"
    lean = settings.fast_path and supported()
    if settings.fast_path and not supported():
        log.warning(
            "paho-mqtt internals changed (%s): using the stock (slower) receive path",
            ", ".join(missing_internals()),
        )
    client = (FastClient if lean else mqtt.Client)(
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


def subscription_filters(prefix: str, site: str = "+", shared_group: str = "") -> list[str]:
    """The collector's one topic filter: the whole prefix, or one site's part of it.

    Not only the telemetry topics: a message on any other topic under the prefix is received
    and dead-lettered as ``unknown_topic`` (issue 15 item 8), where a narrower filter left the
    gateway with a "no matching subscribers" PUBACK and its data gone without a trace.
    """
    topic_filter = f"{prefix}/#" if site == "+" else f"{prefix}/{site}/#"
    return [f"$share/{shared_group}/{topic_filter}"] if shared_group else [topic_filter]


def legacy_filters(prefix: str, site: str = "+", shared_group: str = "") -> list[str]:
    """The telemetry-only filters collectors subscribed to before: a persistent session made
    then still holds them, and a message matching both would come twice (Mosquitto 2.0 sends
    one copy per matching subscription), so they are unsubscribed once the new one is in."""
    filters = [f"{prefix}/{site}/+/telemetry", f"{prefix}/{site}/+/telemetry/lp"]
    return [f"$share/{shared_group}/{f}" for f in filters] if shared_group else filters


# What acknowledging a message needs: (packet id, QoS, connection generation). A plain tuple:
# one is made per message, and a tuple costs a tenth of a frozen dataclass.
AckToken = tuple[int, int, int]


class MqttSource:
    """Subscribes to the telemetry topics and feeds decoded messages to the committer."""

    name = "mqtt"
    kind = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        *,
        intake: Intake,
        open_feed: Callable[[str, str, AckFn | None], Feed],
        metrics: Metrics,
        client_factory: ClientFactory = make_client,
        leaving: bool = False,
    ) -> None:
        self._settings = settings
        # Leaving the group for good: on connect, unsubscribe instead of subscribing, so the
        # broker stops dealing us a share but still delivers what it queued in our session.
        self._leaving = leaving
        self.end_session = False  # close(): ask the broker to drop the session (``leave``)
        self._intake = intake
        self.feed = open_feed(self.name, self.kind, self.ack)
        self._submit = self.feed.submit
        self._metrics = metrics
        self._client_factory = client_factory
        self._client: mqtt.Client | None = None
        self._generation = 0
        self._topics: dict[bytes, str] = {}
        self._connects = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker confirmed our subscriptions
        self.unsubscribed = threading.Event()  # leaving: set once the broker confirmed that
        self.refused: str | None = None
        self.received = 0  # messages received (read by ``leave`` to see the queue run dry)
        # Who we are among processes with our client id: the newest announcement wins.
        self._instance = uuid.uuid4().hex.encode()
        self._announced = False
        self.presence_topic = (
            f"{settings.presence_topic}/{settings.client_id}" if settings.presence_topic else ""
        )
        self._presence_bytes = self.presence_topic.encode() if self.presence_topic else None
        self.filters = subscription_filters(
            settings.topic_prefix, settings.site, settings.shared_group
        )
        self._legacy = legacy_filters(settings.topic_prefix, settings.site, settings.shared_group)

    def start(self) -> None:
        """Connect in the background; paho reconnects with bounded backoff."""
        client = self._client_factory(self._settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        if isinstance(client, FastClient):
            client.on_publish_batch = self._on_publish_batch
            client.burst_max = min(client.burst_max, self._settings.inflight_window)
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
        """Nothing to do before the last commit: the connection stays up for its acks."""

    def health(self) -> SourceHealth:
        """Unhealthy only when the broker refused us for good (credentials, a take-over): a
        broker away is reconnected to, and holds our queue meanwhile."""
        return SourceHealth(
            healthy=self.refused is None,
            problem=f"mqtt refused: {self.refused}" if self.refused else "",
            detail={
                "url": self._settings.url,
                "connected": self.connected.is_set(),
                "subscribed": self.subscribed.is_set(),
            },
        )

    def close(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker) and stop the network thread.

        The session stays for ``session_expiry_s`` (a restart picks it up) unless
        ``end_session`` is set: then the DISCONNECT sets its expiry to 0 (MQTT v5), so the
        broker drops it and queues nothing more for this client id.
        """
        end_session = self.end_session
        client = self._client
        if client is None:
            return
        was_connected = self.connected.is_set()
        properties = None
        if end_session:
            if self._settings.protocol == "5":
                properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = 0
            else:
                log.warning(
                    "MQTT 3.1.1 cannot end a session on disconnect: the broker keeps %s's "
                    "until its persistent_client_expiration",
                    self._settings.client_id,
                )
        if end_session and self.presence_topic and was_connected:
            # Leaving for good: nobody holds this identity now.
            info = client.publish(self.presence_topic, b"", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(_DISCONNECT_WAIT_S)
        client.disconnect(properties=properties)
        if was_connected:
            # The last group's PUBACKs are queued ahead of the DISCONNECT: let the network
            # thread write them (on_disconnect clears ``connected``) before stopping it, or the
            # broker redelivers those messages on the next start.
            deadline = time.monotonic() + _DISCONNECT_WAIT_S
            while self.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
        client.loop_stop()
        self._client = None

    def ack(self, tokens: Sequence[object]) -> int:
        """Acknowledge committed messages received on the current connection; returns how many."""
        acked = 0
        mids: list[int] = []
        with self._lock:
            client = self._client
            if client is None or not self.connected.is_set():
                return 0  # all stale: the broker redelivers them on the new connection
            generation = self._generation
            group = cast("Sequence[AckToken]", tokens)
            if set(map(itemgetter(1, 2), group)) == {(1, generation)}:
                mids = list(map(itemgetter(0), group))  # the usual group: all QoS 1, current
                acked = len(mids)
            else:
                for token in tokens:
                    mid, qos, token_generation = cast(AckToken, token)
                    if token_generation != generation:
                        continue  # stale: the broker redelivers it on the new connection
                    if qos == 1:
                        mids.append(mid)
                    elif qos:
                        client.ack(mid, qos)
                    acked += 1
            if isinstance(client, FastClient):
                client.ack_many(mids)  # the whole group in one packet
            else:
                for mid in mids:
                    client.ack(mid, 1)
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
        presence: list[tuple[str, int]] = []
        if self.presence_topic:
            if not self._announced:
                # Published before we subscribe to it: the broker handles our packets in order,
                # so the retained copy we then get is ours, unless a newer process's.
                client.publish(self.presence_topic, self._instance, qos=1, retain=True)
                self._announced = True
            presence = [(self.presence_topic, 0)]
        if self._leaving:
            if presence:
                client.subscribe(presence)
            log.info("connected to %s; leaving: unsubscribing from %s", self._settings.url,
                     self.filters)  # fmt: skip
            client.unsubscribe(list(self.filters) + self._legacy)
            return
        log.info("connected to %s; subscribing to %s", self._settings.url, self.filters)
        self._subscribe(client, presence)
        if flags.session_present:
            # After the SUBSCRIBE (the broker handles packets in order): no gap in which a
            # message would match neither.
            client.unsubscribe(self._legacy)

    def _subscribe(self, client: mqtt.Client, presence: list[tuple[str, int]]) -> None:
        if self._settings.protocol != "5":
            client.subscribe([(f, 1) for f in self.filters] + presence)
            return
        # Retained messages only for a subscription the session did not have yet: we subscribe
        # again on every connect, and each resend would be another delivery (of a status topic,
        # say: one more dead letter per reconnect). What was published while we were away is
        # in the session's queue anyway. The presence subscription keeps the default: it relies
        # on getting the retained announcement every time.
        new_only = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe(
            [(f, new_only) for f in self.filters]
            + [(topic, SubscribeOptions(qos=qos)) for topic, qos in presence]
        )

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
        if reason.value == _SESSION_TAKEN_OVER:
            self.refused = (
                f"session taken over: another client connected as {self._settings.client_id} "
                "(two collectors with one identity; set EQUIPMON_COLLECTOR__REPLICA or "
                "mqtt.client_id)"
            )
            log.error("%s: not reconnecting", self.refused)
            client.disconnect()  # stops paho's reconnect loop
        elif reason.is_failure:
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

    def _on_unsubscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self.unsubscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """The stock client's callback (when the lean receive path is unavailable)."""
        dup = 8 if message.dup else 0
        self._on_publish_batch(
            [(message._topic, bytes(message.payload), message.mid, message.qos, dup)]
        )

    def _on_publish_batch(self, messages: list[Publish]) -> None:
        """One read burst of PUBLISHes (network thread): decode, then queue them for the commit."""
        # Read without the lock (an int read is atomic): a burst of the old connection sees the
        # old generation or the one on_disconnect set, never the one the next on_connect sets
        # (the lean client hands a burst over before it handles any other packet), so its acks
        # can never go out on a new connection.
        generation = self._generation
        topic_bytes, payloads, mids, qos, dups = zip(*messages, strict=True)
        if self._presence_bytes is not None and self._presence_bytes in topic_bytes:
            messages = self._presence(messages)  # announcements are not telemetry
            if not messages:
                return
            topic_bytes, payloads, mids, qos, dups = zip(*messages, strict=True)
        self._metrics.received.inc(len(messages))
        self.received += len(messages)
        cache = self._topics
        topics = [cache.get(name) or self._topic(name) for name in topic_bytes]
        items = self._intake.process_many(topics, list(payloads))
        for i in [i for i, item in enumerate(items) if type(item) is DeadLetter]:
            letter = cast(DeadLetter, items[i])
            self._metrics.rejected.labels(letter.reason).inc()
            if qos[i]:
                items[i] = self._identified(letter, mids[i], dups[i])
        self._submit(items, list(zip(mids, qos, repeat(generation), strict=False)))

    def _identified(self, letter: DeadLetter, mid: int, dup: int) -> DeadLetter:
        """The dead letter with its message's identity: what lets the spool recognise a
        redelivery of it (after a crash between its commit and its ack) and store none."""
        identity = message_identity(
            self._settings.client_id, mid, bool(dup), letter.topic, letter.payload
        )
        return replace(letter, identity=identity)

    def _presence(self, messages: list[Publish]) -> list[Publish]:
        """Handle announcements on our presence topic (QoS 0: no ack); return the others."""
        rest = []
        for message in messages:
            if message[0] != self._presence_bytes:
                rest.append(message)
            elif message[1] and message[1] != self._instance and self._client is not None:
                self.refused = (
                    f"session taken over: another client connected as {self._settings.client_id}"
                    " (two collectors with one identity; set EQUIPMON_COLLECTOR__REPLICA or"
                    " mqtt.client_id)"
                )
                log.error("%s: a newer process announced itself; not reconnecting", self.refused)
                self._client.disconnect()
        return rest

    def _topic(self, topic_bytes: bytes) -> str:
        """A topic as text (cached: topics repeat; bounded for fleets with churn)."""
        try:
            topic = topic_bytes.decode("utf-8")
        except UnicodeDecodeError:
            topic = repr(topic_bytes)
        if len(self._topics) >= _TOPICS_MAX:
            self._topics.clear()
        self._topics[topic_bytes] = topic
        return topic


def build(settings: MqttSettings, context: SourceContext) -> MqttSource:
    """The MQTT source of the registry: one per collector, decoding by topic (``Intake``)."""
    intake = Intake(
        prefix=settings.topic_prefix,
        max_payload_bytes=settings.max_payload_bytes,
        clock_ns=context.clock_ns,
        fast_codec=settings.fast_path,
    )
    return MqttSource(
        settings,
        leaving=context.leaving,
        intake=intake,
        open_feed=context.open_feed,
        metrics=context.metrics,
        client_factory=context.client_factories.get("mqtt", make_client),
    )
