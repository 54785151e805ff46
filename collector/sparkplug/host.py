"""What a Sparkplug B host application knows about each edge node, and what each message means.

Pure logic, no MQTT: ``SparkplugHost.handle`` takes one decoded message and returns the readings
it resolves, what it cannot resolve (to dead-letter, with the reason), the metrics it skips by
type, the births and deaths to record, and whether the edge node must be asked to rebirth.

The rules (Sparkplug B 3.0, host application):

- NBIRTH starts an edge node's session: its sequence number, its ``bdSeq``, and the name,
  alias and data type of every node metric; the devices are forgotten until their DBIRTH.
- Every later message of the session (DBIRTH, DDEATH, NDATA, DDATA) carries the next sequence
  number, 0-255 wrapping. A gap means a message was lost, perhaps a birth that defined new
  aliases: the host asks for a rebirth. It keeps resolving the aliases it holds from births
  still in force (they are facts, not guesses); what it cannot resolve is dead-lettered.
- Data before any birth (a node the host has never seen, as after the collector's own restart)
  resolves nothing: dead-lettered as ``no_birth`` and a rebirth asked for.
- NDEATH (the edge node's will, sent by the broker) ends the session if its ``bdSeq`` matches
  the birth's; a stale will from an older session is ignored. DDEATH ends one device.

Rebirth requests are limited to one per edge node per ``rebirth_interval_s`` so that a stream
of unresolved data does not become a stream of commands.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from collector.sparkplug.runs import data_run
from collector.sparkplug.state import NS_PER_MS, SEQ_MODULUS, Aliases, Definition, Node
from telemetry.errors import ValidationError
from telemetry.reading import (
    DEFAULT_LIMITS,
    Reading,
    ValidationLimits,
    validate_name,
    validate_time,
)
from telemetry.sparkplug import SparkplugTopic, decode_metric_value, sensor_name
from telemetry.sparkplug import sparkplug_b_pb2 as pb
from telemetry.sparkplug.metrics import DecodedMetric, Metric, Payload, is_control_metric

_NAMES_MAX = 100_000  # validated (site, asset) per topic; bounded for fleets with churn
_FAST_FIELDS: dict[int, str] = {pb.Float: "float_value", pb.Double: "double_value"}


@dataclass(frozen=True, slots=True)
class AssetMapping:
    """How Sparkplug ids become site and asset names: format strings over ``group``, ``node``
    and ``device`` (the device id, or the edge node id for node-level metrics)."""

    site: str = "{group}"
    asset: str = "{device}"

    def site_asset(self, topic: SparkplugTopic) -> tuple[str, str]:
        ids = {
            "group": topic.group,
            "node": topic.edge_node,
            "device": topic.device if topic.device is not None else topic.edge_node,
        }
        return self.site.format(**ids), self.asset.format(**ids)


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Metrics of one message that cannot be stored: dead-lettered with this reason."""

    reason: str
    detail: str
    metrics: int


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A birth or death, recorded as a point so that the API shows 'edge node offline'."""

    site: str
    asset: str
    event: Literal["birth", "death"]
    scope: Literal["node", "device"]
    time_ns: int


@dataclass(slots=True)
class HostResult:
    """Everything one message means to the host."""

    readings: list[Reading] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    lifecycle: list[Lifecycle] = field(default_factory=list)
    rebirth: bool = False  # send NCMD "Node Control/Rebirth" to this message's edge node
    sequence_gap: bool = False
    stale_death: bool = False


class SparkplugHost:
    """The host's view of every edge node it has heard from (one per collector replica)."""

    def __init__(
        self,
        mapping: AssetMapping | None = None,
        *,
        rebirth_interval_s: float = 5.0,
        limits: ValidationLimits = DEFAULT_LIMITS,
    ) -> None:
        self._mapping = mapping or AssetMapping()
        self._rebirth_interval_s = rebirth_interval_s
        self._limits = limits
        self._nodes: dict[tuple[str, str], Node] = {}
        self._site_asset: dict[SparkplugTopic, tuple[str, str]] = {}

    def online_nodes(self) -> list[tuple[str, str]]:
        """(group, edge node) of every node whose session is open."""
        return sorted(key for key, node in self._nodes.items() if node.online)

    def site_asset(self, topic: SparkplugTopic) -> tuple[str, str] | None:
        """The validated site and asset of a topic (None: names the rules reject)."""
        names = self._names(topic)
        return None if isinstance(names, Unresolved) else names

    def handle_run(
        self,
        topics: Sequence[SparkplugTopic],
        series: Sequence[str],
        payloads: Sequence[bytes],
        received_ns: int,
    ) -> list[str] | None:
        """Consecutive data messages (NDATA, DDATA) of one edge node as one line each, in
        whole-run passes (collector/sparkplug/runs.py); None: nothing changed, ``handle``
        each. ``series`` holds each message's line-protocol series key."""
        node = self._nodes.get(topics[0].node_key)
        if node is None:
            return None
        return data_run(node, topics, series, payloads, received_ns, limits=self._limits)

    def handle(
        self, topic: SparkplugTopic, payload: Payload, received_ns: int, now_s: float
    ) -> HostResult:
        """What one message means; updates the edge node's session state."""
        result = HostResult()
        node = self._nodes.get(topic.node_key)
        if node is None:
            node = self._nodes[topic.node_key] = Node()
        kind = topic.message_type
        if kind == "NBIRTH":
            self._node_birth(node, topic, payload, received_ns, result)
        elif kind == "NDEATH":
            self._node_death(node, topic, payload, received_ns, result)
        elif kind in ("NCMD", "DCMD"):
            pass  # commands are for edge nodes (our own rebirth requests come back here)
        elif not node.online:
            result.unresolved.append(
                Unresolved(
                    "no_birth", f"{kind} before the edge node's NBIRTH", len(payload.metrics)
                )
            )
            self._ask_rebirth(node, now_s, result)
        else:
            self._check_sequence(node, payload, now_s, result)
            if kind == "DBIRTH":
                self._device_birth(node, topic, payload, received_ns, result)
            elif kind == "DDEATH":
                node.devices.pop(topic.device or "", None)
                site, asset = self._mapping.site_asset(topic)
                result.lifecycle.append(Lifecycle(site, asset, "death", "device", received_ns))
            elif kind == "NDATA":
                self._data(node.node_metrics, topic, payload, received_ns, result)
            else:  # DDATA
                aliases = node.devices.get(topic.device or "")
                if aliases is None:
                    result.unresolved.append(
                        Unresolved(
                            "no_birth",
                            f"DDATA of device {topic.device!r} before its DBIRTH",
                            len(payload.metrics),
                        )
                    )
                    self._ask_rebirth(node, now_s, result)
                else:
                    self._data(aliases, topic, payload, received_ns, result)
        return result

    # Sessions -----------------------------------------------------------------------------

    def _node_birth(
        self,
        node: Node,
        topic: SparkplugTopic,
        payload: Payload,
        received_ns: int,
        result: HostResult,
    ) -> None:
        node.online = True
        node.seq = int(payload.seq) if payload.HasField("seq") else 0
        node.bd_seq = _bd_seq(payload)
        node.node_metrics = Aliases()
        node.devices = {}
        node.rebirth_asked_s = None
        self._define(node.node_metrics, payload, result)
        site, asset = self._mapping.site_asset(topic)
        result.lifecycle.append(Lifecycle(site, asset, "birth", "node", received_ns))
        self._data(node.node_metrics, topic, payload, received_ns, result)

    def _node_death(
        self,
        node: Node,
        topic: SparkplugTopic,
        payload: Payload,
        received_ns: int,
        result: HostResult,
    ) -> None:
        bd_seq = _bd_seq(payload)
        if not node.online or (bd_seq is not None and node.bd_seq not in (None, bd_seq)):
            result.stale_death = True  # the will of a session that is already over
            return
        node.online = False
        site, asset = self._mapping.site_asset(topic)
        result.lifecycle.append(Lifecycle(site, asset, "death", "node", received_ns))
        for device in node.devices:
            device_topic = SparkplugTopic(topic.group, "DDEATH", topic.edge_node, device)
            site, asset = self._mapping.site_asset(device_topic)
            result.lifecycle.append(Lifecycle(site, asset, "death", "device", received_ns))
        node.devices = {}

    def _device_birth(
        self,
        node: Node,
        topic: SparkplugTopic,
        payload: Payload,
        received_ns: int,
        result: HostResult,
    ) -> None:
        aliases = Aliases()
        node.devices[topic.device or ""] = aliases
        self._define(aliases, payload, result)
        site, asset = self._mapping.site_asset(topic)
        result.lifecycle.append(Lifecycle(site, asset, "birth", "device", received_ns))
        self._data(aliases, topic, payload, received_ns, result)

    def _check_sequence(
        self, node: Node, payload: Payload, now_s: float, result: HostResult
    ) -> None:
        expected = (node.seq + 1) % SEQ_MODULUS
        seq = int(payload.seq) if payload.HasField("seq") else None
        if seq != expected:
            result.sequence_gap = True
            self._ask_rebirth(node, now_s, result)
        if seq is not None:
            node.seq = seq % SEQ_MODULUS

    def _ask_rebirth(self, node: Node, now_s: float, result: HostResult) -> None:
        last = node.rebirth_asked_s
        if last is None or now_s - last >= self._rebirth_interval_s:
            node.rebirth_asked_s = now_s
            result.rebirth = True

    # Metrics ------------------------------------------------------------------------------

    def _define(self, aliases: Aliases, payload: Payload, result: HostResult) -> None:
        for metric in payload.metrics:
            if not metric.HasField("name") or not metric.HasField("datatype"):
                result.skipped["birth_without_name_or_type"] += 1
                continue
            sensor = None if is_control_metric(metric.name) else sensor_name(metric.name)
            if sensor is not None and len(sensor) > self._limits.max_name_length:
                sensor = None  # too long a name to be a field: skipped as a bad name
            definition = Definition(metric.name, sensor, metric.datatype)
            aliases.by_name[metric.name] = definition
            if metric.HasField("alias"):
                alias = int(metric.alias)
                aliases.by_alias[alias] = definition
                value_field = _FAST_FIELDS.get(metric.datatype)
                if alias and sensor is not None and value_field is not None:
                    aliases.fast[alias] = (sensor, value_field)

    def _data(
        self,
        aliases: Aliases,
        topic: SparkplugTopic,
        payload: Payload,
        received_ns: int,
        result: HostResult,
    ) -> None:
        default_ns = (
            int(payload.timestamp) * NS_PER_MS if payload.HasField("timestamp") else received_ns
        )
        values_at: dict[int, dict[str, float]] = {}
        unknown = 0
        fast = aliases.fast
        for metric in payload.metrics:
            # The fast path, what DDATA mostly is: a Float or Double by a non-zero alias, in
            # its field, not null, finite (``v - v`` is NaN for NaN and the infinities).
            entry = fast.get(metric.alias)
            if entry is not None:
                sensor, field = entry
                if metric.WhichOneof("value") == field and not metric.is_null:
                    value = metric.double_value if field == "double_value" else metric.float_value
                    if value - value == 0.0:
                        stamp = metric.timestamp
                        time_ns = stamp * NS_PER_MS if stamp else default_ns
                        values_at.setdefault(time_ns, {})[sensor] = value
                        continue
            definition = _resolve(aliases, metric)
            if definition is None:
                unknown += 1
                continue
            if definition.sensor is None:
                reason = "control_metric" if is_control_metric(definition.name) else "bad_name"
                result.skipped[reason] += 1
                continue
            decoded = decode_metric_value(metric, definition.datatype)
            if not isinstance(decoded, DecodedMetric):
                result.skipped[decoded.reason] += 1
                continue
            time_ns = (
                int(metric.timestamp) * NS_PER_MS if metric.HasField("timestamp") else default_ns
            )
            values_at.setdefault(time_ns, {})[definition.sensor] = decoded.value
        if unknown:
            result.unresolved.append(
                Unresolved(
                    "unknown_alias",
                    f"{unknown} metrics with no alias or name in the birth",
                    unknown,
                )
            )
        if not values_at:
            return
        names = self._names(topic)
        if isinstance(names, Unresolved):
            count = sum(map(len, values_at.values()))
            result.unresolved.append(Unresolved(names.reason, names.detail, count))
            return
        site, asset = names
        now = time.time_ns()
        for time_ns, values in sorted(values_at.items()):
            try:
                validate_time(time_ns, where="timestamp", limits=self._limits, now=now)
            except ValidationError as exc:
                result.unresolved.append(Unresolved(exc.reason, str(exc), len(values)))
                continue
            self._readings(site, asset, time_ns, values, result)

    def _names(self, topic: SparkplugTopic) -> tuple[str, str] | Unresolved:
        """The site and asset of a topic, validated once (sensor names were at the birth)."""
        names = self._site_asset.get(topic)
        if names is None:
            site, asset = self._mapping.site_asset(topic)
            try:
                validate_name(site, what="site", where="site", limits=self._limits)
                validate_name(asset, what="asset", where="asset", limits=self._limits)
            except ValidationError as exc:
                return Unresolved(exc.reason, str(exc), 0)
            if len(self._site_asset) >= _NAMES_MAX:
                self._site_asset.clear()
            names = self._site_asset[topic] = (site, asset)
        return names

    def _readings(
        self, site: str, asset: str, time_ns: int, values: dict[str, float], result: HostResult
    ) -> None:
        step = self._limits.max_sensors
        if len(values) <= step:
            result.readings.append(Reading(site, asset, time_ns, values))
            return
        names = list(values)  # a birth of hundreds of metrics: several readings
        for start in range(0, len(names), step):
            chunk = {name: values[name] for name in names[start : start + step]}
            result.readings.append(Reading(site, asset, time_ns, chunk))


def _resolve(aliases: Aliases, metric: Metric) -> Definition | None:
    if metric.HasField("alias"):
        return aliases.by_alias.get(int(metric.alias))
    if metric.HasField("name"):
        return aliases.by_name.get(metric.name)
    return None


def _bd_seq(payload: Payload) -> int | None:
    for metric in payload.metrics:
        if metric.name == "bdSeq":
            value = decode_metric_value(metric, metric.datatype or 0)
            if isinstance(value, DecodedMetric):
                return int(value.value)
    return None
