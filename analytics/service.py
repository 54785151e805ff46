"""The live detector service: InfluxDB windows → one StreamingScorer per asset → alert posts.

Every tick reads the new points of all assets in one query, fits an asset once its first data
spans ``train_after_s`` (that span is its normal baseline), streams later rows through the
asset's scorer in time order, and on each alarm raise or clear queues a post of an
``equipment_anomaly`` condition in the outbox (delivered in the background, with retries).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import numpy as np

from analytics.alerts_client import AlertsClient, Outbox, alert_body, rfc3339
from analytics.metrics import Metrics
from analytics.scorer import Decision, StreamingScorer
from analytics.settings import ServiceSettings
from analytics.source import AssetKey, AssetWindow, InfluxWindows
from telemetry.errors import InfluxError
from telemetry.health_http import HttpEndpoint
from telemetry.influx.client import InfluxClient

logger = logging.getLogger(__name__)

Poster = Callable[[dict[str, Any]], object]
# A sensor present in fewer than this share of the baseline rows is left out of the model.
MIN_SENSOR_COVERAGE = 0.5
# Fewer complete rows than this cannot describe normal behaviour (the scorer's own floor is 20).
MIN_BASELINE_ROWS = 30


class AssetMonitor:
    """One asset: its baseline buffer until fitted, then its scorer and alarm state."""

    def __init__(self, key: AssetKey, train_after_s: float) -> None:
        self.key = key
        self.train_after_ns = int(train_after_s * 1e9)
        self.scorer: StreamingScorer | None = None
        self.sensors: tuple[str, ...] = ()
        self.alarm = False
        self._buffer: list[tuple[int, dict[str, float]]] = []
        self._last: dict[str, float] = {}

    def feed(self, window: AssetWindow) -> tuple[int, list[tuple[int, Decision]]]:
        """Take new rows; (rows buffered, [(time_ns, decision) at each alarm change])."""
        changes: list[tuple[int, Decision]] = []
        buffered = 0
        for k, t in enumerate(window.times_ns.tolist()):
            row = {
                s: float(v)
                for s, v in zip(window.sensors, window.values[k], strict=True)
                if math.isfinite(v)
            }
            if self.scorer is None:
                self._buffer.append((t, row))
                buffered += 1
                if t - self._buffer[0][0] >= self.train_after_ns:
                    changes.extend(self._fit_and_replay())
            else:
                change = self._score(t, row)
                if change is not None:
                    changes.append(change)
        return buffered, changes

    def _fit_and_replay(self) -> list[tuple[int, Decision]]:
        start = self._buffer[0][0]
        train = [(t, r) for t, r in self._buffer if t - start <= self.train_after_ns]
        rest = self._buffer[len(train) :]
        self._buffer = []
        counts: dict[str, int] = {}
        for _, row in train:
            for name in row:
                counts[name] = counts.get(name, 0) + 1
        sensors = tuple(
            sorted(s for s, c in counts.items() if c >= MIN_SENSOR_COVERAGE * len(train))
        )
        times: list[float] = []
        rows: list[list[float]] = []
        last: dict[str, float] = {}
        for t, row in train:
            last.update(row)
            if all(s in last for s in sensors):
                times.append(t / 1e9)
                rows.append([last[s] for s in sensors])
        if not sensors or len(rows) < MIN_BASELINE_ROWS:
            raise ValueError(f"baseline has {len(rows)} complete rows of {len(sensors)} sensors")
        scorer = StreamingScorer().fit(np.array(rows), np.array(times), list(sensors))
        self.scorer, self.sensors, self._last = scorer, sensors, last
        logger.info("%s/%s: fitted on %d rows of %s", *self.key, len(rows), ", ".join(sensors))
        changes = [self._score(t, r) for t, r in rest]
        return [c for c in changes if c is not None]

    def _score(self, t: int, row: dict[str, float]) -> tuple[int, Decision] | None:
        assert self.scorer is not None
        # A sensor missing from a point keeps its last value (points may carry a subset).
        self._last.update(row)
        decision = self.scorer.update([self._last[s] for s in self.sensors], t / 1e9)
        if decision.alarm == self.alarm:
            return None
        self.alarm = decision.alarm
        return t, decision

    def abandon_baseline(self) -> None:
        """Forget buffered rows after a failed fit; the next span is tried afresh."""
        self._buffer = []


class DetectorService:
    """Wires the InfluxDB source, the per-asset scorers, the outbox and the HTTP endpoint."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        influx: InfluxClient | None = None,
        poster: Poster | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._influx = influx or InfluxClient(settings.influx)
        self._owns_influx = influx is None
        self._client: AlertsClient | None = None
        if poster is None:
            if settings.service_token is None:
                raise ValueError("service_token (EQUIPMON_SERVICE_TOKEN) is required")
            self._client = AlertsClient(settings.api, settings.service_token.get_secret_value())
            poster = self._client.post
        self.outbox = Outbox(poster, settings.api, on_result=self._post_result)
        self.source = InfluxWindows(
            self._influx,
            measurement=settings.measurement,
            lookback_s=settings.effective_lookback_s,
            lateness_s=settings.lateness_s,
            clock_ns=clock_ns,
        )
        self.assets: dict[AssetKey, AssetMonitor] = {}
        self._clock_ns = clock_ns
        self._last_ok_ns: int | None = None
        self._http: HttpEndpoint | None = None
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, http: bool = True) -> Self:
        """Start the outbox thread and (unless http=False) the metrics endpoint."""
        if not self._started:
            self.outbox.start()
            if http:
                self._http = HttpEndpoint(
                    self.settings.http_host,
                    self.settings.http_port,
                    self.metrics.registry,
                    self.health,
                    name="analytics-http",
                )
                self._http.start()
            self._started = True
        return self

    @property
    def http_port(self) -> int | None:
        """The port of /metrics and /healthz, once started."""
        return self._http.port if self._http else None

    def close(self) -> None:
        """Drain the outbox briefly, stop threads, close clients."""
        if self._started:
            self.outbox.stop()
        if self._http is not None:
            self._http.stop()
        if self._client is not None:
            self._client.close()
        if self._owns_influx:
            self._influx.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def run(self, stop: threading.Event) -> None:
        """Tick every tick_s until stop is set."""
        self.start()
        logger.info("detector service running, tick %.3g s", self.settings.tick_s)
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.tick()
            except Exception:
                # A bug in one tick must not stop the service; the next tick goes on.
                logger.exception("tick failed")
                self.metrics.ticks.labels("error").inc()
            stop.wait(max(0.0, self.settings.tick_s - (time.monotonic() - began)))

    # -- work ---------------------------------------------------------------------------------

    def tick(self) -> int:
        """Read new points of all assets, score them, queue alert posts; rows read."""
        with self.metrics.tick_seconds.time():
            try:
                windows = self.source.fetch()
            except InfluxError as exc:
                logger.warning("tick skipped, InfluxDB read failed: %s", exc)
                self.metrics.ticks.labels("influx_error").inc()
                return 0
            rows = 0
            for key, window in windows.items():
                rows += len(window.times_ns)
                self._process(key, window)
            self.metrics.ticks.labels("ok").inc()
            self._last_ok_ns = self._clock_ns()
            self._update_gauges()
            return rows

    def _process(self, key: AssetKey, window: AssetWindow) -> None:
        monitor = self.assets.get(key)
        if monitor is None:
            monitor = self.assets[key] = AssetMonitor(key, self.settings.train_after_s)
        was_fitted = monitor.scorer is not None
        try:
            buffered, changes = monitor.feed(window)
        except Exception:
            # A baseline the scorer cannot learn from (e.g. no usable sensor) must not stop the
            # other assets: this one starts collecting a new baseline.
            logger.exception("%s/%s: baseline fit failed, collecting a new one", *key)
            self.metrics.fits.labels("failed").inc()
            monitor.abandon_baseline()
            return
        if monitor.scorer is not None and not was_fitted:
            self.metrics.fits.labels("ok").inc()
        self.metrics.rows_buffered.inc(buffered)
        self.metrics.rows_scored.inc(len(window.times_ns) - buffered)
        for time_ns, decision in changes:
            self.metrics.transitions.labels("active" if decision.alarm else "normal").inc()
            logger.info(
                "%s/%s: alarm %s at %s (score %.3g, threshold %.3g)",
                *key,
                "raised" if decision.alarm else "cleared",
                rfc3339(time_ns),
                decision.score,
                decision.threshold,
            )
            self.outbox.put(alert_body(key, time_ns, decision))

    def _update_gauges(self) -> None:
        fitted = sum(1 for m in self.assets.values() if m.scorer is not None)
        self.metrics.assets.labels("scored").set(fitted)
        self.metrics.assets.labels("training").set(len(self.assets) - fitted)
        self.metrics.alarms_active.set(sum(1 for m in self.assets.values() if m.alarm))
        self.metrics.outbox.set(self.outbox.pending())

    def _post_result(self, outcome: str) -> None:
        self.metrics.posts.labels(outcome).inc()
        self.metrics.outbox.set(self.outbox.pending())

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while ticks succeed (a stale last tick means InfluxDB is unreadable)."""
        now = self._clock_ns()
        limit_ns = int(max(3 * self.settings.tick_s, 30.0) * 1e9)
        age = None if self._last_ok_ns is None else (now - self._last_ok_ns) / 1e9
        ok = age is None or age * 1e9 <= limit_ns
        return ok, {
            "last_tick_age_s": age,
            "assets": len(self.assets),
            "alarms": sum(1 for m in self.assets.values() if m.alarm),
            "outbox_pending": self.outbox.pending(),
        }
