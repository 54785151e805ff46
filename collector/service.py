"""Wiring: spool, intake, group committer, MQTT source, writer and HTTP endpoint in one process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from collector.committer import DeadLetterLog, GroupCommitter
from collector.intake import Intake
from collector.metrics import Metrics
from collector.settings import CollectorSettings
from collector.sources.mqtt import ClientFactory, MqttSource, make_client
from collector.sources.serial import SerialSources
from collector.spool import Spool
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
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.spool = Spool(
            settings.spool_path,
            synchronous=settings.spool.synchronous,
            dead_letter_max=settings.spool.dead_letter_max,
            dead_letter_payload_bytes=settings.spool.dead_letter_payload_bytes,
            row_max_readings=settings.writer.batch_max_readings,
            row_max_bytes=settings.writer.batch_max_bytes,
        )
        self.sink = sink_factory(settings.influx)
        self.writer = Writer(
            self.spool,
            self.sink,
            settings.writer,
            self.metrics,
            on_freed=self._space_freed,
            clock_ns=clock_ns,
        )
        intake = Intake(
            prefix=settings.mqtt.topic_prefix,
            max_payload_bytes=settings.mqtt.max_payload_bytes,
            clock_ns=clock_ns,
        )
        self.source: MqttSource
        self.committer = GroupCommitter(
            self.spool,
            self._ack,
            self.metrics,
            interval_s=settings.spool.commit_interval_ms / 1000,
            max_messages=settings.spool.commit_max_messages,
            max_bytes=settings.spool.max_bytes,
            max_pending=settings.mqtt.inflight_window,
            dead_letter_log=DeadLetterLog(settings.log.dead_letter_log_interval_s),
        )
        self.source = MqttSource(
            settings.mqtt,
            intake=intake,
            submit=self.committer.submit,
            metrics=self.metrics,
            client_factory=client_factory,
        )
        self.serial = SerialSources(settings.serial, self.spool, settings.spool.max_bytes)
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
        self._stopped = threading.Event()

    def _ack(self, tokens: Any) -> int:
        return self.source.ack(tokens)

    def _space_freed(self) -> None:
        self.committer.space_freed()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless InfluxDB refuses us, the broker refused us, or the spool cannot commit."""
        problems = []
        if not self.writer.healthy:
            problems.append(f"influx: {self.writer.last_error}")
        if self.source.refused:
            problems.append(f"mqtt refused: {self.source.refused}")
        if self.committer.failed:
            problems.append(f"spool: {self.committer.failed}")
        return not problems, {
            "problems": problems,
            "mqtt_connected": self.source.connected.is_set(),
            "spool_readings": self.spool.readings,
            "spool_bytes": self.spool.bytes,
            "spool_age_s": round(self.spool.age_s(), 3),
            "backpressure": self.spool.bytes >= self.settings.spool.max_bytes,
            "last_write_error": self.writer.last_error,
        }

    def start(self) -> None:
        """Start the HTTP endpoint, the writer (it resumes a non-empty spool), then MQTT."""
        if self.spool.rows:
            log.info("resuming: %d readings waiting in the spool", self.spool.readings)
        if self.http is not None:
            self.http.start()
        self.writer.start()
        self.committer.start()
        self.serial.start()
        self.source.start()

    def stop(self, flush_s: float | None = None) -> None:
        """Graceful stop: commit and ack what arrived, disconnect, drain the spool briefly."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        flush = self.settings.shutdown_flush_s if flush_s is None else flush_s
        self.serial.stop()  # every reading it took is in the spool when this returns
        self.committer.stop()  # commits and acks the last group while still connected
        self.source.stop()
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
