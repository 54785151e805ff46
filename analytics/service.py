"""The live detector service: InfluxDB windows → per-asset monitors → alert and status posts.

Every tick reads the new points of all assets in one query and feeds each asset's
``AssetMonitor`` (instrument rules, then the scorer once fitted). Alert posts go to the outbox
first; then the status of every asset is offered to the status sender (newest batch only).
Models are loaded from ``data_dir`` on first sight of an asset (refitted from the stored
baseline); without one, an asset whose data reaches back past the first read is fitted on its
stored history (up to ``retrain_window_s``, at least ``train_after_s`` of it) on the trainer
thread, so a start on existing data scores at once; otherwise it is fitted after
``train_after_s`` of live data. Models are retrained on schedule or on request
(``POST /train``), and refitted with a higher threshold after "no fault found" outcomes.
``GET /assets`` says which assets are scored yet. Background threads: outbox, status sender,
trainer, feedback and limits pollers.
A process configured with a shard (``shard.sites``, ``shard.count``/``shard.index``) reads,
scores, trains and takes feedback for its own assets only (analytics.shard).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from analytics.alerts_client import AlertsClient, Outbox, rfc3339
from analytics.api_reader import ApiReader, Periodic, SensorLimits
from analytics.errors import ModelRejectedError
from analytics.feedback import LabelStore
from analytics.meter_sync import MeterPoster, MeterSync
from analytics.meters import MeterBook
from analytics.metrics import Metrics
from analytics.model import AssetModel
from analytics.model_store import (
    Baseline,
    ModelStore,
    build_baseline,
    fit_scorer,
)
from analytics.monitor import AssetMonitor, FeedResult, Points
from analytics.ops_http import TrainRoute
from analytics.rules import InstrumentRules
from analytics.settings import ServiceSettings
from analytics.shard import Shard
from analytics.source import AssetKey, AssetWindow, InfluxWindows
from analytics.status_client import StatusClient, StatusSender
from analytics.training import HISTORY, Trainer, TrainRequest, make_keep
from telemetry.errors import InfluxError
from telemetry.health_http import HttpEndpoint
from telemetry.influx.client import InfluxClient
from telemetry.retry import Backoff

logger = logging.getLogger(__name__)

Poster = Callable[[dict[str, Any]], object]
StatusPoster = Callable[[list[dict[str, Any]]], object]
# Feedback polls re-read this much before the previous poll (clock skew, slow commits).
FEEDBACK_OVERLAP_S = 300.0
FIRST_FEEDBACK_S = 30 * 86400.0
# An asset whose first point read lies within this of the read's start has older points (the
# slowest demo assets report every 30 s; an asset that reports less often, or whose data
# starts a minute into the read, takes the live path, as before).
HISTORY_EDGE_S = 60.0


class DetectorService:
    """Wires source, monitors, store, labels, trainer, senders, pollers and the HTTP port."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        influx: InfluxClient | None = None,
        poster: Poster | None = None,
        status_poster: StatusPoster | None = None,
        reader: ApiReader | None = None,
        meter_poster: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._influx = influx or InfluxClient(settings.influx)
        self._owns_influx = influx is None
        self._clock_ns = clock_ns
        token = settings.service_token.get_secret_value() if settings.service_token else None
        self._closers: list[Callable[[], None]] = []
        if poster is None:
            if token is None:
                raise ValueError(
                    f"service_token ({settings.env_name('service_token')}) is required"
                )
            alerts = AlertsClient(settings.api, token)
            self._closers.append(alerts.close)
            poster = alerts.post
        if status_poster is None and token is not None and settings.status_posts:
            status = StatusClient(settings.api, token)
            self._closers.append(status.close)
            status_poster = status.post
        if reader is None and token is not None:
            reader = ApiReader(settings.api, token)
            self._closers.append(reader.close)
        self._token, self._reader = token, reader
        self.outbox = Outbox(poster, settings.api, on_result=self._post_result)
        self.status: StatusSender | None = None
        if status_poster is not None:
            self.status = StatusSender(
                status_poster,
                alerts_first=self.outbox.wait_empty,
                wait_s=settings.tick_s,
                backoff=Backoff(settings.api.retry_min_s, settings.api.retry_max_s),
                on_result=lambda outcome, n: self.metrics.status_posts.labels(outcome).inc(n),
            )
        self.shard = Shard(settings.shard)
        self.source = InfluxWindows(
            self._influx,
            measurement=settings.measurement,
            lookback_s=settings.effective_lookback_s,
            lateness_s=settings.lateness_s,
            clock_ns=clock_ns,
            where=self.shard.where(),
            owns=None if self.shard.everything else self.shard.owns,
        )
        self.store = ModelStore(settings.data_dir / "models")
        self.labels = LabelStore(settings.data_dir / "labels.json", settings.lifecycle)
        self.meters = MeterBook(settings.data_dir / "meters.json")
        if meter_poster is None and token is not None:
            client = MeterPoster(settings.api.url, token, settings.api.timeout_s)
            self._closers.append(client.close)
            meter_poster = client.post
        self.limits: SensorLimits = {}
        self.trainer = Trainer(
            self._influx,
            settings.measurement,
            self.store,
            self.labels,
            limits=lambda key: self.limits.get(key, {}),
            max_rows=settings.lifecycle.max_train_rows,
            warm_s=settings.lifecycle.warm_s,
            clock_ns=clock_ns,
            on_result=lambda reason, result: self.metrics.retrains.labels(reason, result).inc(),
        )
        self.meter_sync = MeterSync(
            self.meters, meter_poster, self.trainer.read, settings.lifecycle, self.metrics
        )
        self.assets: dict[AssetKey, AssetMonitor] = {}
        self._history_fits: dict[AssetKey, TrainRequest] = {}
        self._states: list[dict[str, Any]] = []  # the last tick's status items (GET /assets)
        self._limits_version = 0
        self._applied_limits: dict[AssetKey, int] = {}
        self._pollers: list[Periodic] = []
        self._last_ok_ns: int | None = None
        self._http: HttpEndpoint | None = None
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, http: bool = True, pollers: bool = True) -> Self:
        """Start the background threads and (unless http=False) the HTTP port."""
        if self._started:
            return self
        self.outbox.start()
        if self.status is not None:
            self.status.start()
        self.trainer.start()
        if pollers and self._reader is not None:
            lc, rules = self.settings.lifecycle, self.settings.rules
            self._pollers = [
                Periodic("analytics-limits", rules.limits_refresh_s, self.refresh_limits),
                Periodic("analytics-feedback", lc.feedback_poll_s, self.poll_feedback),
                Periodic("analytics-meters", lc.meters_post_s, self.meter_sync.post),
            ]
            for poller in self._pollers:
                poller.start()
        if http:
            self._http = HttpEndpoint(
                self.settings.http_host,
                self.settings.http_port,
                self.metrics.registry,
                self.health,
                name="analytics-http",
                post_routes={"/train": TrainRoute(self.submit_training, self._token)},
                get_routes={"/assets": self.asset_states},
            )
            self._http.start()
        self._started = True
        return self

    @property
    def http_port(self) -> int | None:
        """The port of /metrics, /healthz and /train, once started."""
        return self._http.port if self._http else None

    def close(self) -> None:
        """Drain the senders briefly, stop threads, save labels, close clients."""
        for poller in self._pollers:
            poller.stop()
        if self._started:
            self.trainer.stop()
            self.outbox.stop()
            if self.status is not None:
                self.status.stop()
        if self._http is not None:
            self._http.stop()
        self.meter_sync.save()
        try:
            self.labels.save()
        except OSError:
            logger.exception("could not save the labels")
        for close in self._closers:
            close()
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
        logger.info(
            "detector service running, tick %.3g s, shard: %s",
            self.settings.tick_s,
            self.shard.describe(),
        )
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.tick()
            except Exception:
                # A bug in one tick must not stop the service; the next tick goes on.
                logger.exception("tick failed")
                self.metrics.ticks.labels("error").inc()
            stop.wait(max(0.0, self.settings.tick_s - (time.monotonic() - began)))

    # -- the tick -----------------------------------------------------------------------------

    def tick(self) -> int:
        """Read new points of all assets, score them, queue alert and status posts; rows read."""
        with self.metrics.tick_seconds.time():
            self._swap_models()
            self._settle_history_fits()
            skipped = self.source.skipped
            try:
                windows = self.source.fetch()
                offline = self.source.fetch_states()
            except InfluxError as exc:
                logger.warning("tick skipped, InfluxDB read failed: %s", exc)
                self.metrics.ticks.labels("influx_error").inc()
                return 0
            self.metrics.series_skipped.inc(self.source.skipped - skipped)
            rows = 0
            for key, window in windows.items():
                rows += len(window.times_ns)
                self._process(key, window)
            now_ns = self._clock_ns()
            for key, monitor in self.assets.items():
                monitor.source_offline = key in offline
                if key not in windows:
                    self._apply(key, monitor.check_stale(now_ns))
            self._schedule_retrains(now_ns / 1e9)
            self.meter_sync.save()
            self.metrics.ticks.labels("ok").inc()
            self._last_ok_ns = now_ns
            self._update_gauges()
            learn_s = self.settings.train_after_s
            states = [m.status(now_ns, learn_s) for m in self.assets.values()]
            self._states = [
                {**item, "scoring": m.scorer is not None}
                for item, m in zip(states, self.assets.values(), strict=True)
            ]
            if self.status is not None:
                self.status.offer(states)
            return rows

    def _monitor(self, key: AssetKey) -> AssetMonitor:
        monitor = self.assets.get(key)
        if monitor is None:
            rules = InstrumentRules(self.settings.rules)
            monitor = self.assets[key] = AssetMonitor(
                key,
                self.settings.train_after_s,
                rules,
                meters=self.meters,
                meter_max_gap_s=self.settings.lifecycle.meter_max_gap_s,
                meter_min_baseline_s=self.settings.lifecycle.meter_min_baseline_s,
                meter_rules=self.settings.lifecycle.meter_rules,
            )
            self._load(key, monitor)
        if self._applied_limits.get(key) != self._limits_version:
            monitor.rules.set_limits(self.limits.get(key, {}))
            self._applied_limits[key] = self._limits_version
        return monitor

    def _process(self, key: AssetKey, window: AssetWindow) -> None:
        new = key not in self.assets
        monitor = self._monitor(key)
        if new and monitor.scorer is None:
            self._fit_from_history(key, monitor, window)
        if len(window.times_ns):
            self.meter_sync.catch_up(key, monitor, int(window.times_ns[0]))
        try:
            result = monitor.feed(window, self._fit)
        except Exception as exc:
            # A baseline the scorer cannot learn from (e.g. no usable sensor) must not stop the
            # other assets: this one starts collecting a new baseline.
            if isinstance(exc, ValueError):
                logger.warning("%s/%s: baseline fit failed (%s), collecting a new one", *key, exc)
            else:
                logger.exception("%s/%s: window failed, collecting a new baseline", *key)
            self.metrics.fits.labels("failed").inc()
            monitor.abandon_baseline()
            return
        if result.fitted:
            self.metrics.fits.labels("ok").inc()
            monitor.fitted_at_s = self._clock_ns() / 1e9
        self.metrics.rows_buffered.inc(result.buffered)
        self.metrics.rows_scored.inc(result.scored)
        self._apply(key, result)

    def _apply(self, key: AssetKey, result: FeedResult) -> None:
        """Queue a result's posts and count it; record own alarm periods for retraining."""
        for body in result.posts:
            if body["kind"] != "equipment_anomaly":
                self.metrics.instrument.labels(body["kind"], body["state"]).inc()
            self.outbox.put(body)
        if result.reclassified:
            self.metrics.reclassified.inc(result.reclassified)
        for time_ns, raised in result.equipment:
            self.metrics.transitions.labels("active" if raised else "normal").inc()
            logger.info(
                "%s/%s: alarm %s at %s", *key, "raised" if raised else "cleared", rfc3339(time_ns)
            )
            if raised:
                self.labels.open_alarm(key, time_ns / 1e9)
            else:
                self.labels.close_alarm(key, time_ns / 1e9)
        if result.equipment:
            self._save_labels()

    # -- models -------------------------------------------------------------------------------

    def _fit(self, key: AssetKey, points: Points) -> tuple[Baseline, AssetModel]:
        """Fit a new asset's first baseline (fault periods and out-of-range points left out)."""
        now_s = self._clock_ns() / 1e9
        keep = make_keep(key, self.labels, self.limits.get(key, {}), now_s)
        baseline = build_baseline(
            points, keep=keep, max_rows=self.settings.lifecycle.max_train_rows
        )
        factor = self.labels.threshold_factor(key, now_s)
        scorer = fit_scorer(baseline, factor)
        self._save(key, baseline, factor, "auto")
        return baseline, scorer

    def _save(self, key: AssetKey, baseline: Baseline, factor: float, reason: str) -> None:
        try:
            self.store.save(key, baseline, threshold_factor=factor, reason=reason)
            self.metrics.models.labels("saved").inc()
        except OSError:
            # The model still works in memory; only a restart would have to refit it.
            logger.exception("%s/%s: could not save the model", *key)

    def _load(self, key: AssetKey, monitor: AssetMonitor) -> None:
        """Refit from the stored baseline, if a valid one exists (else fit from InfluxDB)."""
        try:
            found = self.store.load(key)
            if found is None:
                return
            baseline, meta = found
            scorer = fit_scorer(baseline, self.labels.threshold_factor(key, self._clock_ns() / 1e9))
        except (ModelRejectedError, ValueError) as exc:
            logger.error("%s; refitting from InfluxDB data instead", exc)
            self.metrics.models.labels("rejected").inc()
            return
        monitor.install(baseline, scorer, float(meta.get("fitted_at_s", 0.0)))
        self.metrics.models.labels("loaded").inc()
        logger.info("%s/%s: model loaded (%d baseline rows)", *key, len(baseline.times_s))

    def _swap_models(self) -> None:
        """Install the models the trainer finished (history, request, schedule, feedback); rows
        buffered while an asset had no model are scored by the new one."""
        for trained in self.trainer.ready():
            monitor = self._monitor(trained.key)
            waiting = monitor.take_buffer()
            first = monitor.scorer is None
            monitor.install(
                trained.baseline, trained.scorer, trained.fitted_at_s, trained.scored_until_s
            )
            if self._history_fits.pop(trained.key, None) is not None:
                logger.info(
                    "%s/%s: fitted on %d rows of stored history (%.1f h)",
                    *trained.key,
                    len(trained.baseline.times_s),
                    (trained.baseline.end_s - trained.baseline.start_s) / 3600,
                )
            if first:
                self.metrics.fits.labels("ok").inc()
            result = monitor.catch_up(waiting)
            self.metrics.rows_scored.inc(result.scored)
            self._apply(trained.key, result)

    def _fit_from_history(self, key: AssetKey, monitor: AssetMonitor, window: AssetWindow) -> None:
        """A new asset whose points start where the first read began has older ones: fit it on
        that stored history (the trainer, up to a retrain window back) rather than on its first
        train_after_s, and hold the live fit until then. A fit on minutes of data alarms on a
        machine's ordinary load swings; a start on a backfilled or an existing database needs
        no learning period at all."""
        if not (self._started and self.settings.lifecycle.fit_from_history):
            return  # without its threads (a service driven tick by tick), the live path
        if not len(window.times_ns):
            return
        reaches_back = int(window.times_ns[0]) - self.source.since_ns
        if reaches_back > HISTORY_EDGE_S * 1e9:
            return  # its data starts inside the read: there is no older history
        # The baseline ends where a live first fit's would (train_after_s into the read), so
        # the rest of the read is scored, as it would have been: a fault in the last minutes
        # is judged, not learned. The history adds what lies before the read.
        end_ns = min(
            self._clock_ns(), self.source.since_ns + int(self.settings.train_after_s * 1e9)
        )
        start_ns = end_ns - int(self.settings.lifecycle.retrain_window_s * 1e9)
        self._history_fits[key] = self.trainer.submit(
            key, start_ns, end_ns, HISTORY, min_span_s=self.settings.train_after_s
        )
        monitor.awaiting_history = True

    def _settle_history_fits(self) -> None:
        """An asset whose history fit failed (too little of it) learns from live data."""
        for key, request in list(self._history_fits.items()):
            if request.done.is_set() and request.error is not None:
                del self._history_fits[key]
                self.assets[key].awaiting_history = False

    def _schedule_retrains(self, now_s: float) -> None:
        lc = self.settings.lifecycle
        window_ns = int(lc.retrain_window_s * 1e9)
        self._schedule_repair_baselines()
        for key, monitor in self.assets.items():
            fitted = monitor.fitted_at_s
            if monitor.scorer is None or fitted is None:
                continue
            # A first model fitted on less than a retrain window (a new asset's first hour) is
            # refitted as soon as its data spans a whole window: the long-horizon channel, which
            # sees slow faults, only works on a baseline of a day or more.
            short = lc.grow_short_baselines and monitor.baseline_span_s < 0.9 * lc.retrain_window_s
            if short and monitor.last_ns is not None:
                if monitor.last_ns / 1e9 - monitor.baseline_start_s >= lc.retrain_window_s:
                    monitor.baseline_span_s = lc.retrain_window_s  # once; the refit replaces it
                    end_ns = monitor.last_ns
                    self.trainer.submit(key, end_ns - window_ns, end_ns, "grow")
                continue
            if now_s - fitted < lc.retrain_every_s:
                continue
            monitor.fitted_at_s = now_s  # next attempt one period later, whatever the result
            end_ns = int(now_s * 1e9)
            self.trainer.submit(key, end_ns - window_ns, end_ns, "schedule")

    def _schedule_repair_baselines(self) -> None:
        """Refit repaired assets on their post-repair data once there is enough of it."""
        lc = self.settings.lifecycle
        latest = {k: m.last_ns / 1e9 for k, m in self.assets.items() if m.last_ns is not None}
        due = self.labels.repairs_due(lc.post_repair_s, latest)
        for key, repaired_s in due:
            monitor = self.assets[key]
            assert monitor.last_ns is not None  # in ``latest``
            # The new baseline starts at the repair; the "grow" rule extends it to a full
            # retrain window later, still all post-repair.
            monitor.baseline_span_s = 0.0
            self.trainer.submit(key, int(repaired_s * 1e9) + 1, monitor.last_ns, "repair")
            logger.info("%s/%s: repaired; refitting on post-repair data", *key)
        if due:
            self._save_labels()

    def submit_training(
        self, key: AssetKey, start_ns: int, end_ns: int, reason: str
    ) -> TrainRequest:
        """Queue a fit of key on [start_ns, end_ns] (the HTTP /train endpoint calls this)."""
        if not self.shard.owns(key):
            # Another process scores it: a model fitted here would never be used.
            raise ValueError(f"{key[0]}/{key[1]} is not in this shard ({self.shard.describe()})")
        return self.trainer.submit(key, start_ns, end_ns, reason)

    # -- API sync (background threads) ---------------------------------------------------------

    def refresh_limits(self) -> None:
        """Read every sensor's min/max from the API (the tick applies them)."""
        assert self._reader is not None
        limits = self._reader.sensor_limits()
        self.limits = limits
        self._limits_version += 1
        logger.info("sensor limits of %d assets read from the API", len(limits))

    def poll_feedback(self) -> None:
        """Read new work-order outcomes and turn them into labels."""
        assert self._reader is not None
        started_s = self._clock_ns() / 1e9
        since = self.labels.since or rfc3339(int((started_s - FIRST_FEEDBACK_S) * 1e9))
        items = self._reader.outcomes(since)
        if not self.shard.everything:
            # Another shard's outcomes are its labels (in its own data_dir), not ours.
            items = [i for i in items if self.shard.owns((str(i.get("site")), str(i.get("asset"))))]
        applied, retune = self.labels.apply_outcomes(items, started_s)
        self.labels.since = rfc3339(int((started_s - FEEDBACK_OVERLAP_S) * 1e9))
        self._save_labels()
        for label in applied:
            self.metrics.labels.labels(label).inc()
        for key in retune:
            monitor = self.assets.get(key)
            if monitor is not None and monitor.scorer is not None:
                # The trainer refits the stored baseline with the new threshold factor.
                self.trainer.submit_refit(key, "feedback")

    def _save_labels(self) -> None:
        try:
            self.labels.save()
        except OSError:
            logger.exception("could not save the labels")

    # -- observability ------------------------------------------------------------------------

    def _update_gauges(self) -> None:
        fitted = sum(1 for m in self.assets.values() if m.scorer is not None)
        self.metrics.assets.labels("scored").set(fitted)
        self.metrics.assets.labels("training").set(len(self.assets) - fitted)
        self.metrics.alarms_active.set(sum(1 for m in self.assets.values() if m.alarm))
        self.metrics.outbox.set(self.outbox.pending())

    def _post_result(self, outcome: str) -> None:
        self.metrics.posts.labels(outcome).inc()
        self.metrics.outbox.set(self.outbox.pending())

    def asset_states(self) -> dict[str, Any]:
        """Every asset's status as of the last tick, with whether it is scored yet (GET /assets:
        ``device_sims inject`` and the stack ask it whether an asset still learns)."""
        return {"train_after_s": self.settings.train_after_s, "assets": self._states}

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while ticks succeed (a stale last tick means InfluxDB is unreadable)."""
        now = self._clock_ns()
        limit_ns = int(max(3 * self.settings.tick_s, 30.0) * 1e9)
        age = None if self._last_ok_ns is None else (now - self._last_ok_ns) / 1e9
        ok = age is None or age * 1e9 <= limit_ns
        return ok, {
            "last_tick_age_s": age,
            "assets": len(self.assets),
            "shard": self.shard.describe(),
            "scoring": sum(1 for m in self.assets.values() if m.scorer is not None),
            "alarms": sum(1 for m in self.assets.values() if m.alarm),
            "outbox_pending": self.outbox.pending(),
        }
