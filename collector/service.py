"""Wiring: spool, group committer, the sources (from the registry), writer and HTTP endpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from collector.capacity import (
    HOLDING_BACK,
    OK,
    Reserve,
    SpoolCapacity,
    measure_fs,
    reserve_size,
)
from collector.committer import DeadLetterLog, GroupCommitter
from collector.errors import SpoolError
from collector.identity import SpoolLock
from collector.metrics import Metrics
from collector.settings import CollectorSettings
from collector.sources.base import Source, SourceContext, SourceHealth
from collector.sources.feed import AckFn, Feed
from collector.sources.mqtt import ClientFactory, MqttSource, make_client
from collector.sources.registry import KINDS, SourceKind, build_sources
from collector.spool import Spool
from collector.supervisor import Supervisor
from collector.writer import LineSink, Writer
from telemetry.health_http import HttpEndpoint
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings

log = logging.getLogger(__name__)

SinkFactory = Callable[[InfluxSettings], LineSink]


def _influx_sink(settings: InfluxSettings) -> LineSink:
    return InfluxClient(settings)


class CollectorService:
    """One collector: ``start()``, then ``stop()`` (graceful: commit, ack, drain what it can)."""

    def __init__(
        self,
        settings: CollectorSettings,
        *,
        client_factory: ClientFactory = make_client,
        sink_factory: SinkFactory = _influx_sink,
        clock_ns: Callable[[], int] = time.time_ns,
        metrics: Metrics | None = None,
        leaving: bool = False,
        source_kinds: Sequence[SourceKind] = KINDS,
    ) -> None:
        self.settings = settings
        self._clock_ns = clock_ns
        self.metrics = metrics or Metrics()
        self.spool_lock = SpoolLock(settings.spool_path)
        self.spool, self.capacity = _open_spool(settings, self.spool_lock)
        self.supervisor = Supervisor(
            self.metrics.thread_restarts,
            restart_min_s=settings.supervise.restart_min_s,
            restart_max_s=settings.supervise.restart_max_s,
            healthy_after_s=settings.supervise.healthy_after_s,
        )
        self.sink = sink_factory(settings.influx)
        self.writer = Writer(
            self.spool,
            self.sink,
            settings.writer,
            self.metrics,
            on_freed=self._space_freed,
            clock_ns=clock_ns,
            probe=getattr(self.sink, "server_version", None),
            supervisor=self.supervisor,
            create_database=(
                getattr(self.sink, "ensure_database", None)
                if settings.writer.create_database
                else None
            ),
            database_hint=_database_hint(settings.influx),
        )
        self.committer = GroupCommitter(
            self.spool,
            self.metrics,
            interval_s=settings.spool.commit_interval_ms / 1000,
            max_messages=settings.spool.commit_max_messages,
            capacity=self.capacity,
            max_pending=settings.mqtt.inflight_window,
            dead_letter_log=DeadLetterLog(settings.log.dead_letter_log_interval_s),
            supervisor=self.supervisor,
        )
        context = SourceContext(
            open_feed=self._open_feed,
            metrics=self.metrics,
            spawn=self.supervisor.spawn,
            clock_ns=clock_ns,
            client_factories={"mqtt": client_factory},
            leaving=leaving,
        )
        # Every input, built from its settings section through the one registry.
        try:
            self.sources: list[Source] = build_sources(settings, context, source_kinds)
        except Exception:
            self.spool.close()  # a source that cannot be built leaves nothing open
            self.spool_lock.release()
            raise
        self.http: HttpEndpoint | None = None
        if settings.http.enabled:
            self.http = HttpEndpoint(
                settings.http.host,
                settings.http.port,
                self.metrics.registry,
                self.health,
                name="collector-http",
            )
        self.metrics.spool_bytes.set_function(lambda: self.spool.bytes)
        self.metrics.spool_readings.set_function(lambda: self.spool.readings)
        self.metrics.spool_age.set_function(self.spool.age_s)
        self.metrics.watch_totals(self.spool.totals)
        self.metrics.watch_sources(lambda: self.sources)
        self._watch_capacity()
        self._stopped = threading.Event()

    def _watch_capacity(self) -> None:
        capacity, m = self.capacity, self.metrics

        def fresh() -> SpoolCapacity:
            capacity.should_hold()  # measured at most every 50 ms, so once per scrape
            return capacity

        m.spool_disk_bytes.set_function(lambda: fresh().usage.spool_bytes)
        m.spool_limit_bytes.set_function(lambda: fresh().limit)
        m.spool_fill.set_function(lambda: fresh().fill)
        m.spool_fs_free.set_function(lambda: fresh().usage.free_bytes)
        m.spool_reserve.set_function(lambda: float(capacity.reserve.held))
        for status in (OK, HOLDING_BACK):
            m.spool_status.labels(status).set_function(
                lambda status=status: float(fresh().status() == status)  # type: ignore[misc]
            )

    def _open_feed(self, name: str, kind: str, ack: AckFn | None) -> Feed:
        return Feed(name, kind, self.committer, ack=ack, clock_ns=self._clock_ns)

    @property
    def source(self) -> MqttSource:
        """The MQTT source (what ``leave`` and the MQTT tests watch)."""
        return next(s for s in self.sources if isinstance(s, MqttSource))

    def _space_freed(self) -> None:
        self.committer.space_freed()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless InfluxDB refuses us, a source is unhealthy (the broker refused us, a
        serial port will not open, a Modbus device stopped answering), or the spool cannot
        commit.

        A full spool is not a problem: holding back is the designed answer to a long outage
        (the broker keeps the rest) and ends by itself; a 503 would only invite a restart,
        which frees nothing. ``status`` and ``spool_fill`` say it for people and alerts.
        """
        holding = self.capacity.should_hold()
        problems = []
        if not self.writer.healthy:
            problems.append(f"influx: {self.writer.last_error}")
        sources: dict[str, Any] = {}
        for source in self.sources:
            state = source.health()
            if not state.healthy:
                problems.append(state.problem or f"{source.name}: unhealthy")
            sources[source.name] = _source_report(source, state)
        if self.committer.failed:
            problems.append(f"spool: {self.committer.failed}")
        for thread, error in sorted(self.supervisor.down().items()):
            problems.append(f"thread {thread} down (restarting): {error}")
        return not problems, {
            "status": "unhealthy" if problems else (HOLDING_BACK if holding else OK),
            "spool_status": HOLDING_BACK if holding else OK,
            "problems": problems,
            "mqtt_connected": self.source.connected.is_set(),
            "spool_readings": self.spool.readings,
            "spool_bytes": self.spool.bytes,
            "spool_age_s": round(self.spool.age_s(), 3),
            "spool_disk_bytes": self.capacity.usage.spool_bytes,
            "spool_limit_bytes": self.capacity.limit,
            "spool_fill": round(self.capacity.fill, 4),
            "spool_fs_free_bytes": self.capacity.usage.free_bytes,
            "spool_reserve_held": self.capacity.reserve.held,
            "backpressure": holding,
            "last_write_error": self.writer.last_error,
            "sources": sources,
        }

    def start(self) -> None:
        """Start the HTTP endpoint, the writer (it resumes a non-empty spool), then MQTT."""
        if self.spool.rows:
            log.info("resuming: %d readings waiting in the spool", self.spool.readings)
        if self.http is not None:
            self.http.start()
        self.writer.start()
        self.committer.start()
        for source in self.sources:
            source.start()

    def stop(self, flush_s: float | None = None) -> None:
        """Graceful stop: commit and ack what arrived, disconnect, drain the spool briefly.

        The broker keeps the session (a stop is a restart) unless the MQTT source's
        ``end_session`` is set: then the DISCONNECT asks it to drop the session (``leave``).
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        flush = self.settings.shutdown_flush_s if flush_s is None else flush_s
        for source in self.sources:
            source.stop()  # no more input (serial readers end; MQTT stays connected)
        self.committer.stop()  # commits and acks the last group while still connected
        for source in self.sources:
            source.close()
        self.writer.stop()
        if self.spool.rows and flush > 0:
            drained = self.writer.drain(flush)
            log.info(
                "shutdown: spool %s (%d readings left for the next start)",
                "drained" if drained else "not drained",
                self.spool.readings,
            )
        if self.http is not None:
            self.http.stop()
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()
        self.spool.close()
        self.spool_lock.release()


def _source_report(source: Source, state: SourceHealth) -> dict[str, Any]:
    """One source's entry in ``/healthz``: the same keys for every kind, then its own."""
    feed = source.feed
    age = feed.last_input_age_s()
    return {
        "kind": source.kind,
        "healthy": state.healthy,
        "problem": state.problem,
        "messages": feed.messages,
        "readings": feed.readings,
        "dead_letters": sum(feed.dead_letters.values()),
        "last_input_age_s": None if age is None else round(age, 3),
        **state.detail,
    }


def _database_hint(influx: InfluxSettings) -> str:
    """The command that creates the database (1.x) or bucket (2.x) the settings name."""
    return (
        f"influx -execute 'CREATE DATABASE \"{influx.database}\"' (InfluxDB 1.x), or "
        f"influx bucket create --org {influx.org} --name {influx.effective_bucket} (2.x)"
    )


def _open_spool(settings: CollectorSettings, lock: SpoolLock) -> tuple[Spool, SpoolCapacity]:
    """The spool, its reserve and its capacity; a spool that cannot be written is one clear error.

    The error names the setting that chose the file (``spool.path``, or ``data_dir`` when it is
    empty) and its variable, since that is what the operator has to change. The spool is locked
    first: a second collector on the same file refuses here.
    """
    path = settings.spool_path
    setting = settings.spool_setting
    variable = settings.env_name(setting)
    where = f"the spool {path} (set by {setting}, {variable}) cannot be written"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        total = measure_fs(path.parent)[1]
        spool = Spool(
            path,
            synchronous=settings.spool.synchronous,
            dead_letter_max=settings.spool.dead_letter_max,
            dead_letter_payload_bytes=settings.spool.dead_letter_payload_bytes,
            row_max_readings=settings.writer.batch_max_readings,
            row_max_bytes=settings.writer.batch_max_bytes,
            dead_letter_max_bytes=settings.spool.dead_letter_max_bytes,
        )
    except OSError as exc:
        lock.release()
        raise SpoolError(f"{where}: {exc}") from exc
    except SpoolError as exc:
        lock.release()
        raise SpoolError(f"{where}: {exc.__cause__ or exc}") from exc
    reserve = Reserve(Path(f"{path}.reserve"), reserve_size(settings.spool.reserve_bytes, total))
    if not reserve.restore():
        log.warning("no room for the spool's %d-byte reserve yet: retried later", reserve.size)
    spool.reserve = reserve
    dead_letter_budget = settings.spool.dead_letter_max_bytes

    def on_limit(limit: int) -> None:
        # Dead letters share the spool's file: they never take more than 1/8 of its room.
        spool.dead_letter_max_bytes = min(dead_letter_budget, limit // 8)

    capacity = SpoolCapacity(
        spool.disk_usage,
        max_bytes=settings.spool.max_bytes,
        resume_fraction=settings.spool.resume_fraction,
        reserve=reserve,
        on_limit=on_limit,
    )
    return spool, capacity
