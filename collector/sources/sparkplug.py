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
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import cast

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.settings import MqttSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import AckFn, Feed
from collector.sources.mqtt import make_client
from collector.sources.paho_fast import FastClient, Publish
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
_TOPICS_MAX = 100_000  # parsed topics are cached; bounded for fleets with churn
_STATE_PREFIX = f"{NAMESPACE}/STATE/"
_MIN_RUN = 3  # measured: one by one is cheaper for 1-2 messages, runs from 3 (this machine)


@dataclass(slots=True)
class _Burst:
    """What one read burst comes to."""

    lines: list[str] = field(default_factory=list)  # readings, as line protocol
    states: list[Reading] = field(default_factory=list)
    items: list[SpoolEntry | DeadLetter] = field(default_factory=list)
    mids: list[int] = field(default_factory=list)
    rebirths: list[SparkplugTopic] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _DataTopic:
    """An NDATA or DDATA topic whose site and asset are valid, with its series key."""

    raw: bytes
    topic: SparkplugTopic
    node_key: tuple[str, str]
    series: str  # ``telemetry,asset=..,site=.. ``
    ndata: bool  # the edge node's own metrics (else a device's)


_TOPIC, _SERIES = attrgetter("topic"), attrgetter("series")
_NODE_KEY, _NDATA = attrgetter("node_key"), attrgetter("ndata")


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
        open_feed: Callable[[str, str, AckFn | None], Feed],
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self._mqtt = mqtt_settings
        self.name = "sparkplug"
        self.feed = open_feed(self.name, self.kind, self._ack)
        self._generation = 0  # connections so far: acks of an older one are not sent
        self._topics: dict[bytes, SparkplugTopic] = {}
        self._data_topics: dict[bytes, _DataTopic] = {}  # the data topics of ``_topics``
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
        # The collector's own client: the lean receive path (bursts, one call per read) when
        # paho has its internals, TLS and login from mqtt settings, manual acks.
        client = make_client(
            self._mqtt.model_copy(update={"client_id": self.client_id, "protocol": "5"})
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        if isinstance(client, FastClient):
            client.on_publish_batch = self._on_batch
        else:
            client.on_message = self._on_message
        self._state_stamp = self._clock() // 1_000_000
        if self.settings.host_id:
            client.will_set(
                state_topic(self.settings.host_id), self._state(online=False), qos=1, retain=True
            )
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._mqtt.session_expiry_s
        client.connect_async(
            self._mqtt.host,
            self._mqtt.port,
            keepalive=self._mqtt.keepalive_s,
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
        self._generation += 1
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
        """The stock paho path (an unsupported paho): one message as a burst of one."""
        self._on_batch([(msg.topic.encode(), bytes(msg.payload), msg.mid, msg.qos, 0)])

    def _on_batch(self, burst: list[Publish]) -> None:
        """One read burst: every message judged in order, then one spool entry for all their
        readings and states, the dead letters beside it, and one submit (network thread).

        Data messages of one edge node on topics seen before (what a stream mostly is) go to
        the host as one run (``SparkplugHost.handle_run``); a run it does not take in
        whole-run passes is judged message by message, like every other message."""
        client = self._client
        received = self._clock()
        now_s = time.monotonic()
        out = _Burst()
        topics, payloads, mids, qos, _dups = zip(*burst, strict=True)
        out.mids.extend(compress(mids, qos))
        known = list(map(self._data_topics.get, topics))
        if None not in known and len(set(map(_NODE_KEY, known))) == 1:
            self._run(cast("list[_DataTopic]", known), list(payloads), received, now_s, out)
        else:
            self._segments(burst, known, received, now_s, out)
        parts = []
        if out.lines:
            parts.append("\n".join(out.lines).encode())
        if out.states:
            parts.append(self._states.lines(out.states))
        body = b"\n".join(parts)  # (each part's lines carry no final newline)
        if body:
            out.items.append(SpoolEntry(self.name, body, len(out.lines), received))
        if out.items:
            # One token per item; the burst's QoS 1 packet ids ride on the last (acked once
            # the group holding all of them is committed).
            tokens: list[object] = [(self._generation, ())] * (len(out.items) - 1)
            tokens.append((self._generation, tuple(out.mids)))
            self.feed.submit(out.items, tokens)
            self.feed.messages += len(burst) - len(out.items)  # messages, not spool items
        elif out.mids:
            self._ack([(self._generation, tuple(out.mids))])  # nothing to store (states, commands)
        if client is not None:
            for node in out.rebirths:
                self._ask_rebirth(client, node)

    def _segments(
        self,
        burst: list[Publish],
        known: list[_DataTopic | None],
        received: int,
        now_s: float,
        out: _Burst,
    ) -> None:
        """A mixed burst: each edge node's data messages, in their order, as one run; every
        other message alone, after the runs of the data before it (edge nodes publish at the
        same time, so a burst interleaves them; only one node's own order matters)."""
        runs: dict[tuple[str, str], tuple[list[_DataTopic], list[bytes]]] = {}
        data_topics = self._data_topics
        for data, (topic, payload, *_) in zip(known, burst, strict=True):
            if data is not None or (data := data_topics.get(topic)) is not None:  # (new ones)
                run = runs.get(data.node_key)
                if run is None:
                    run = runs[data.node_key] = ([], [])
                run[0].append(data)
                run[1].append(payload)
                continue
            for run in runs.values():
                self._run(*run, received, now_s, out)
            runs.clear()
            self._judge_safely(topic, payload, received, now_s, out)
        for run in runs.values():
            self._run(*run, received, now_s, out)

    def _run(
        self,
        run: list[_DataTopic],
        payloads: list[bytes],
        received: int,
        now_s: float,
        out: _Burst,
    ) -> None:
        """Data messages of one edge node: in whole-run passes, else one by one (as are
        runs too short to gain from it: a run's fixed cost is that of ~2 messages)."""
        if len(run) < _MIN_RUN:
            for data, payload in zip(run, payloads, strict=True):
                self._judge_safely(data.raw, payload, received, now_s, out)
            return
        try:
            lines = self._host.handle_run(
                list(map(_TOPIC, run)), list(map(_SERIES, run)), payloads, received
            )
        except Exception:  # a bug here must not lose messages: one by one decides
            log.exception("sparkplug: the run fast path failed")
            lines = None
        if lines is None:
            for data, payload in zip(run, payloads, strict=True):
                self._judge_safely(data.raw, payload, received, now_s, out)
            return
        out.lines.extend(lines)
        s = self.status
        s.readings += len(lines)
        nodes = sum(map(_NDATA, run))
        if nodes:
            s.messages["NDATA"] += nodes
        if len(run) - nodes:
            s.messages["DDATA"] += len(run) - nodes

    def _judge_safely(
        self, topic: bytes, payload: bytes, received: int, now_s: float, out: _Burst
    ) -> None:
        try:
            self._judge(topic, payload, received, now_s, out)
        except Exception as exc:  # a bug here must not stop the session: keep the message
            text = topic.decode(errors="replace")
            log.exception("sparkplug: unexpected error on %s", text)
            detail = f"{type(exc).__name__}: {exc}"
            out.items.append(_dead(received, "internal_error", detail, text, payload))

    def _judge(
        self, raw_topic: bytes, payload: bytes, received: int, now_s: float, out: _Burst
    ) -> None:
        topic = self._topics.get(raw_topic)
        if topic is None:
            text = raw_topic.decode(errors="replace")
            if text.startswith(_STATE_PREFIX):
                return  # host states, ours included
            try:
                topic = parse_topic(text)
            except PayloadError as exc:
                self.status.dead_letters[exc.reason] += 1
                out.items.append(_dead(received, exc.reason, str(exc), text, payload))
                return
            if len(self._topics) >= _TOPICS_MAX:
                self._topics.clear()
                self._data_topics.clear()
            self._topics[raw_topic] = topic
            self._learn_data_topic(raw_topic, topic)
        try:
            message = decode_payload(payload)
        except PayloadError as exc:
            self.status.dead_letters[exc.reason] += 1
            out.items.append(_dead(received, exc.reason, str(exc), str(topic), payload))
            return
        self.status.messages[topic.message_type] += 1
        result = self._host.handle(topic, message, received, now_s)
        self._count(result)
        for u in result.unresolved:
            out.items.append(_dead(received, u.reason, u.detail, str(topic), payload))
        out.lines.extend(map(self._readings.line, result.readings))
        out.states.extend(
            Reading(e.site, e.asset, e.time_ns, {"online": float(e.event == "birth")})
            for e in result.lifecycle
        )
        if result.rebirth:
            out.rebirths.append(topic)

    def _learn_data_topic(self, raw: bytes, topic: SparkplugTopic) -> None:
        """Remember an NDATA/DDATA topic with valid names for runs (``_on_batch``); with
        ``mqtt.fast_path`` false none is, and every message goes one by one."""
        if topic.message_type not in ("NDATA", "DDATA") or not self._mqtt.fast_path:
            return
        names = self._host.site_asset(topic)
        if names is not None:
            series = self._readings.series_key(*names)
            data = _DataTopic(raw, topic, topic.node_key, series, topic.device is None)
            self._data_topics[raw] = data

    def _ack(self, tokens: Sequence[object]) -> int:
        """Acknowledge the QoS 1 messages of committed groups (the feed's ack); packet ids of an
        older connection are skipped: the broker resends those after the reconnect."""
        client = self._client
        if client is None:
            return 0
        mids = [
            mid
            for generation, group in cast("Sequence[tuple[int, tuple[int, ...]]]", tokens)
            if generation == self._generation
            for mid in group
        ]
        if isinstance(client, FastClient):
            client.ack_many(mids)
        else:
            for mid in mids:
                client.ack(mid, 1)
        return len(mids)

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
        section.sparkplug, section.mqtt, context.open_feed, clock_ns=context.clock_ns
    )


def _dead(received: int, reason: str, detail: str, topic: str, payload: bytes) -> DeadLetter:
    return DeadLetter(received, reason, detail, topic, payload, len(payload))
