"""Prometheus metrics of one collector process, on a registry of its own (no globals).

Process counters restart at zero with the process; the ``*_lifetime`` family mirrors the
spool's persistent totals, which survive restarts and SIGKILL (they are committed in the same
transactions as the data they count).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collector.sources.base import Source

NS = "equipmon_collector"


class _TotalsCollector(Collector):
    """Exposes the spool's persistent totals at scrape time."""

    def __init__(self, totals: Callable[[], Mapping[str, int]]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{NS}_lifetime",
            "Totals kept in the spool across restarts (messages/readings spooled, readings "
            "written, dead letters by reason).",
            labels=["name"],
        )
        for name, value in sorted(self._totals().items()):
            family.add_metric([name], value)
        yield family


class _SourcesCollector(Collector):
    """Exposes every source's counts (from its feed) and health at scrape time, one shape for
    all: MQTT, serial ASCII, Modbus RTU and whatever is registered later."""

    def __init__(self, sources: Callable[[], Sequence[Source]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        readings = CounterMetricFamily(
            f"{NS}_readings", "Readings committed to the spool, by source.", labels=["source"]
        )
        messages = CounterMetricFamily(
            f"{NS}_source_messages",
            "Messages or frames taken from a source (good and bad), by source.",
            labels=["source"],
        )
        dead = CounterMetricFamily(
            f"{NS}_source_dead_letters",
            "Dead letters stored (bad input: a bad payload, an unparseable serial line, a "
            "Modbus answer with a bad CRC), by source and reason.",
            labels=["source", "reason"],
        )
        errors = CounterMetricFamily(
            f"{NS}_source_errors",
            "Errors of a source's link that are not bad input (a port that would not open or "
            "was lost, a Modbus device that did not answer), by source and error.",
            labels=["source", "error"],
        )
        up = GaugeMetricFamily(
            f"{NS}_source_up",
            "1 while the source is healthy (port open, devices answering, broker accepting).",
            labels=["source", "kind"],
        )
        age = GaugeMetricFamily(
            f"{NS}_source_last_input_age_seconds",
            "Seconds since the source last took input (absent before its first).",
            labels=["source"],
        )
        for source in self._sources():
            feed, health = source.feed, source.health()
            readings.add_metric([source.name], feed.readings)
            messages.add_metric([source.name], feed.messages)
            for reason, count in sorted(feed.dead_letters.items()):
                dead.add_metric([source.name, reason], count)
            for error, count in sorted(health.errors.items()):
                errors.add_metric([source.name, error], count)
            up.add_metric([source.name, source.kind], float(health.healthy))
            last = feed.last_input_age_s()
            if last is not None:
                age.add_metric([source.name], last)
        yield from (readings, messages, dead, errors, up, age)


class Metrics:
    """Every metric the collector exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter(f"{NS}_messages_received", "MQTT messages received.", registry=r)
        self.acknowledged = Counter(
            f"{NS}_messages_acknowledged", "MQTT messages acknowledged (after commit).", registry=r
        )
        self.rejected = Counter(
            f"{NS}_messages_rejected",
            "Messages (or points) refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            f"{NS}_dead_letters", "Dead letters stored, by reason.", ["reason"], registry=r
        )
        self.dead_letters_redelivered = Counter(
            f"{NS}_dead_letters_redelivered",
            "Bad messages redelivered (after a crash or reconnect between their commit and "
            "their ack) and recognised: acknowledged, no second dead letter.",
            registry=r,
        )
        self.unknown_topic = Counter(
            f"{NS}_messages_unknown_topic",
            "Messages on a topic under the prefix that is not a telemetry topic (dead-lettered "
            "as unknown_topic; each message once).",
            registry=r,
        )
        self.readings_spooled = Counter(
            f"{NS}_readings_spooled", "Readings made durable in the spool.", registry=r
        )
        self.readings_written = Counter(
            f"{NS}_readings_written", "Readings InfluxDB confirmed.", registry=r
        )
        self.commits = Counter(f"{NS}_spool_commits", "Group commits to the spool.", registry=r)
        self.write_errors = Counter(
            f"{NS}_write_errors", "Failed InfluxDB writes, by kind.", ["kind"], registry=r
        )
        self.write_latency = Histogram(
            f"{NS}_write_latency_seconds",
            "Duration of successful InfluxDB write requests.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.connects = Counter(f"{NS}_mqtt_connects", "Successful MQTT connects.", registry=r)
        self.reconnects = Counter(
            f"{NS}_mqtt_reconnects", "MQTT connects after the first one.", registry=r
        )
        self.connected = Gauge(f"{NS}_mqtt_connected", "1 while connected.", registry=r)
        self.subscribed = Gauge(
            f"{NS}_mqtt_subscribed", "1 once the broker confirmed the subscriptions.", registry=r
        )
        self.backpressure = Gauge(
            f"{NS}_backpressure", "1 while the spool is full and acks are held.", registry=r
        )
        self.healthy = Gauge(f"{NS}_healthy", "1 unless a fatal error is unresolved.", registry=r)
        self.spool_bytes = Gauge(f"{NS}_spool_bytes", "Line-protocol bytes spooled.", registry=r)
        self.spool_readings = Gauge(f"{NS}_spool_readings", "Readings spooled.", registry=r)
        self.spool_age = Gauge(
            f"{NS}_spool_age_seconds", "Age of the oldest spooled message.", registry=r
        )
        self.spool_disk_bytes = Gauge(
            f"{NS}_spool_disk_bytes",
            "What the spool takes on disk: pages in use plus the WAL (spool.max_bytes counts it).",
            registry=r,
        )
        self.spool_limit_bytes = Gauge(
            f"{NS}_spool_limit_bytes",
            "The spool's effective limit: spool.max_bytes, lowered to what its disk can hold.",
            registry=r,
        )
        self.spool_fill = Gauge(
            f"{NS}_spool_fill_ratio", "Spool disk bytes over its effective limit.", registry=r
        )
        self.spool_fs_free = Gauge(
            f"{NS}_spool_fs_free_bytes", "Free bytes on the spool's file system.", registry=r
        )
        self.spool_reserve = Gauge(
            f"{NS}_spool_reserve_held",
            "1 while the spool holds its reserve file (0: given back to a full disk).",
            registry=r,
        )
        self.spool_status = Gauge(
            f"{NS}_spool_status",
            "1 for the spool's current status: 'ok' or 'spool full, holding back'.",
            ["status"],
            registry=r,
        )
        self.thread_restarts = Counter(
            f"{NS}_thread_restarts",
            "Supervised threads (writer lanes, committer) restarted after they died, by thread.",
            ["thread"],
            registry=r,
        )
        self.healthy.set(1)

    def watch_sources(self, sources: Callable[[], Sequence[Source]]) -> None:
        """Export every source's counts and health."""
        self.registry.register(_SourcesCollector(sources))

    def watch_totals(self, totals: Callable[[], Mapping[str, int]]) -> None:
        """Export the spool's persistent totals."""
        self.registry.register(_TotalsCollector(totals))
