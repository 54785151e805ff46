"""Sparkplug B edge nodes on the broker, read by the collector as a (primary) host application.

Its own MQTT session (``<client_id>-sparkplug``), never inside a shared subscription: births
and data of one edge node must reach the same host, and a shared group deals them out to
different replicas. Replicas split Sparkplug by group id instead (``sparkplug.groups``).

Each message is decoded (telemetry.sparkplug) and judged by the host's session rules
(collector.sparkplug.host); the readings it resolves, its births and deaths (points in the
``source_state`` measurement) and the dead letters of what it cannot resolve go to the
committer like any other source's. A rebirth request is an NCMD ``Node Control/Rebirth``.

Zero loss the Sparkplug way: NDATA and DDATA travel at QoS 0, so the broker does not queue them
for a host that is away. As primary host the collector publishes its STATE (retained, online)
once its subscriptions are granted, with a will that says offline: edge nodes store while it is
away and send what they stored, with its own timestamps, after it comes back. The session is
persistent so a broker that queues QoS 0 for offline sessions (Mosquitto's
``queue_qos0_messages true``, deploy/mosquitto) keeps what was in flight when the collector
died.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.settings import MqttSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import Feed
from collector.sparkplug.host import AssetMapping, HostResult, SparkplugHost
from collector.sparkplug.settings import SparkplugSettings
from collector.spool import DeadLetter, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.errors import PayloadError
from telemetry.reading import Reading
from telemetry.sparkplug import NAMESPACE, SparkplugTopic, decode_payload, parse_topic, state_topic
from telemetry.sparkplug import sparkplug_b_pb2 as pb

log = logging.getLogger(__name__)

STATE_MEASUREMENT = "source_state"
_STATE_PREFIX = f"{NAMESPACE}/STATE/"


@dataclass
class SparkplugStatus:
    """What /healthz and /metrics show of the Sparkplug host."""

    connected: bool = False
    state_online: bool = False  # our STATE "online" is published
    error: str | None = None
    messages: Counter[str] = field(default_factory=Counter)  # by message type
    readings: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason, in readings
    skipped: Counter[str] = field(default_factory=Counter)  # metrics not stored, by reason
    rebirths_requested: int = 0
    sequence_gaps: int = 0
    stale_deaths: int = 0


class SparkplugSource:
    """The Sparkplug B host application of one collector."""

    kind = "sparkplug"

    def __init__(
        self,
        settings: SparkplugSettings,
        mqtt_settings: MqttSettings,
        feed: Feed,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self._mqtt = mqtt_settings
        self.name = "sparkplug"
        self.feed = feed
        self._clock = clock_ns
        self._host = SparkplugHost(
            AssetMapping(settings.site, settings.asset),
            rebirth_interval_s=settings.rebirth_interval_s,
        )
        self._readings = LineFormatter()
        self._states = LineFormatter(STATE_MEASUREMENT)
        self._client: mqtt.Client | None = None
        # Sparkplug 3.0: the STATE birth and its will carry the same timestamp, so that an edge
        # node can tell a late will of an older session from the current state.
        self._state_stamp = 0
        self.status = SparkplugStatus()
        self.subscribed = threading.Event()

    @property
    def client_id(self) -> str:
        return self.settings.client_id or f"{self._mqtt.client_id}-sparkplug"

    @property
    def filters(self) -> list[str]:
        """Our groups, or every group; never a ``$share`` filter."""
        groups = self.settings.groups or ["+"]
        return [f"{NAMESPACE}/{group}/#" for group in groups]

    def start(self) -> None:
        """Connect in the background (paho reconnects with bounded backoff)."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        settings = self._mqtt
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
            min_delay=max(1, round(settings.reconnect_min_s)),
            max_delay=round(settings.reconnect_max_s),
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._state_stamp = self._clock() // 1_000_000
        if self.settings.host_id:
            client.will_set(
                state_topic(self.settings.host_id), self._state(online=False), qos=1, retain=True
            )
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = settings.session_expiry_s
        client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client = client
        client.loop_start()

    def stop(self) -> None:
        """Say offline (edge nodes start storing), then disconnect: nothing more comes in.

        What arrived before is with the committer, which commits it before the service ends;
        what edge nodes publish after our offline STATE they store for our return."""
        client = self._client
        if client is None:
            return
        if self.settings.host_id and self.status.connected:
            info = client.publish(
                state_topic(self.settings.host_id), self._state(online=False), qos=1, retain=True
            )
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                log.warning("sparkplug: the offline STATE could not be sent before stopping")
        client.disconnect()
        client.loop_stop()
        self._client = None

    def close(self) -> None:
        """Nothing: the session ended with ``stop``."""

    def health(self) -> SourceHealth:
        """Unhealthy when the broker refused the session or its subscriptions (as for MQTT, a
        broker that is away is reconnected to); the detail shows the Sparkplug picture."""
        s = self.status
        return SourceHealth(
            healthy=s.error is None,
            problem=f"{self.name}: {s.error}" if s.error else "",
            detail={
                "connected": s.connected,
                "subscribed": self.subscribed.is_set(),
                "state_online": s.state_online,
                "edge_nodes_online": len(self._host.online_nodes()),
                "readings": s.readings,
                "rebirths_requested": s.rebirths_requested,
                "sequence_gaps": s.sequence_gaps,
                "stale_deaths": s.stale_deaths,
                "metrics_skipped": dict(s.skipped),
            },
            errors={
                "sequence_gap": s.sequence_gaps,
                "rebirth_requested": s.rebirths_requested,
            },
        )

    def _state(self, *, online: bool) -> bytes:
        return json.dumps({"online": online, "timestamp": self._state_stamp}).encode()

    # paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.status.error = f"broker refused the Sparkplug session: {reason}"
            log.error("%s", self.status.error)
            return
        self.status.connected = True
        self.status.error = None
        client.subscribe([(topic, 1) for topic in self.filters])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self.status.error = f"broker refused the Sparkplug subscriptions: {refused}"
            log.error("%s", self.status.error)
            return
        self.subscribed.set()
        if self.settings.host_id:
            # Only now: edge nodes answer an online STATE with their births at once.
            client.publish(
                state_topic(self.settings.host_id), self._state(online=True), qos=1, retain=True
            )
            self.status.state_online = True

    def _on_disconnect(self, client: mqtt.Client, *args: object) -> None:
        self.status.connected = False
        self.status.state_online = False
        self.subscribed.clear()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(_STATE_PREFIX):
            return  # host states, ours included
        received = self._clock()
        payload = bytes(msg.payload)
        try:
            items, rebirth = self._decode(msg.topic, payload, received)
        except Exception as exc:  # a bug here must not stop the session: keep the message
            log.exception("sparkplug: unexpected error on %s", msg.topic)
            items = [
                _dead(
                    received, "internal_error", f"{type(exc).__name__}: {exc}", msg.topic, payload
                )
            ]
            rebirth = None
        if items:
            self.feed.submit(items, [None] * len(items))
        if rebirth is not None:
            self._ask_rebirth(client, rebirth)

    def _decode(
        self, topic_text: str, payload: bytes, received: int
    ) -> tuple[list[SpoolEntry | DeadLetter], SparkplugTopic | None]:
        try:
            topic = parse_topic(topic_text)
            message = decode_payload(payload)
        except PayloadError as exc:
            self.status.dead_letters[exc.reason] += 1
            return [_dead(received, exc.reason, str(exc), topic_text, payload)], None
        self.status.messages[topic.message_type] += 1
        result = self._host.handle(topic, message, received, time.monotonic())
        self._count(result)
        items: list[SpoolEntry | DeadLetter] = [
            _dead(received, u.reason, u.detail, topic_text, payload) for u in result.unresolved
        ]
        body = self._readings.lines(result.readings) if result.readings else b""
        if result.lifecycle:
            body += self._states.lines(
                [
                    Reading(e.site, e.asset, e.time_ns, {"online": float(e.event == "birth")})
                    for e in result.lifecycle
                ]
            )
        if body:
            items.append(SpoolEntry(topic_text, body, len(result.readings), received))
        return items, topic if result.rebirth else None

    def _count(self, result: HostResult) -> None:
        s = self.status
        s.readings += len(result.readings)
        for u in result.unresolved:
            s.dead_letters[u.reason] += u.metrics
        s.skipped.update(result.skipped)
        s.sequence_gaps += result.sequence_gap
        s.stale_deaths += result.stale_death

    def _ask_rebirth(self, client: mqtt.Client, topic: SparkplugTopic) -> None:
        command = pb.Payload(timestamp=self._clock() // 1_000_000)
        command.metrics.append(
            pb.Payload.Metric(name="Node Control/Rebirth", datatype=pb.Boolean, boolean_value=True)
        )
        client.publish(
            f"{NAMESPACE}/{topic.group}/NCMD/{topic.edge_node}", command.SerializeToString()
        )
        self.status.rebirths_requested += 1
        log.info("sparkplug: asked %s/%s for a rebirth", topic.group, topic.edge_node)


@dataclass(frozen=True, slots=True)
class SparkplugSection:
    """The registry's section for the Sparkplug source: its settings and the broker's."""

    sparkplug: SparkplugSettings
    mqtt: MqttSettings


def build(section: SparkplugSection, context: SourceContext) -> SparkplugSource:
    """The Sparkplug source of the registry (one per collector when enabled)."""
    return SparkplugSource(
        section.sparkplug,
        section.mqtt,
        context.open_feed("sparkplug", SparkplugSource.kind, None),
        clock_ns=context.clock_ns,
    )


def _dead(received: int, reason: str, detail: str, topic: str, payload: bytes) -> DeadLetter:
    return DeadLetter(received, reason, detail, topic, payload, len(payload))
