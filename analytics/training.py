"""Training on request, schedule, feedback or stored history: build a baseline, fit, warm up,
save, hand over.

Runs on its own thread so neither an HTTP request nor a retrain stalls the tick: the worker
reads the range from InfluxDB (one query; a feedback refit reuses the stored baseline), drops
points inside fault or unlabelled alarm periods (``feedback.LabelStore``) and points outside
the sensors' physical limits, fits the scorer, then replays the last ``warm_s`` of data through
it (one more query) so its adaptive state is current, saves the baseline (``model_store``) and
hands the model to the tick thread, which swaps it in at its next tick.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analytics.errors import ModelRejectedError
from analytics.feedback import ALARM, LabelStore
from analytics.model import AssetModel
from analytics.model_store import (
    Baseline,
    ModelStore,
    build_baseline,
    fit_scorer,
)
from analytics.rules import Limits
from analytics.source import AssetKey, as_float, as_int
from telemetry.errors import InfluxError
from telemetry.influx.client import InfluxClient, quote_ident, quote_literal

logger = logging.getLogger(__name__)

Points = list[tuple[int, dict[str, float]]]
# The reason of a first fit on stored history (at start, or when an asset first shows up).
HISTORY = "history"


@dataclass
class TrainRequest:
    """One fit of one asset on [start_ns, end_ns]; ``done`` is set with result or error."""

    key: AssetKey
    start_ns: int
    end_ns: int
    reason: str
    from_store: bool = False  # refit the stored baseline (new threshold factor)
    # A first fit on stored history is refused when its baseline spans less than this (as much
    # as a live first fit learns from: ``train_after_s``).
    min_span_s: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Trained:
    """A fitted model waiting to be swapped in by the tick thread."""

    key: AssetKey
    baseline: Baseline
    scorer: AssetModel
    fitted_at_s: float
    scored_until_s: float  # the warm-up replay fed rows up to here


def in_limits(row: dict[str, float], limits: Limits) -> bool:
    """Whether every value of a row lies within its sensor's physical limits."""
    for name, value in row.items():
        lo, hi = limits.get(name, (None, None))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return False
    return True


def make_keep(
    key: AssetKey, labels: LabelStore, limits: Limits, now_s: float, *, own_alarms: bool = True
) -> Callable[[int, dict[str, float]], bool]:
    """A point filter for baselines: not in an excluded period, within limits.

    ``own_alarms=False`` keeps the service's own alarm periods (a post-repair fit: the old
    model alarms on the repaired machine because it differs from the worn one, and that data is
    exactly the new normal).
    """
    periods = labels.excluded_periods(key, now_s)
    if not own_alarms:
        periods = [p for p in periods if p.label != ALARM]

    def keep(t_ns: int, row: dict[str, float]) -> bool:
        t = t_ns / 1e9
        return in_limits(row, limits) and not any(p.covers(t, now_s) for p in periods)

    return keep


class Trainer:
    """Fits requested models on a worker thread; ``ready()`` hands them to the tick."""

    def __init__(
        self,
        influx: InfluxClient,
        measurement: str,
        store: ModelStore,
        labels: LabelStore,
        *,
        limits: Callable[[AssetKey], Limits],
        max_rows: int,
        warm_s: float,
        clock_ns: Callable[[], int] = time.time_ns,
        on_result: Callable[[str, str], None] = lambda _reason, _result: None,
    ) -> None:
        self._warm_s = warm_s
        self._clock_ns = clock_ns
        self._influx = influx
        self._measurement = measurement
        self._store = store
        self._labels = labels
        self._limits = limits
        self._max_rows = max_rows
        self._on_result = on_result
        self._requests: queue.Queue[TrainRequest | None] = queue.Queue()
        self._ready: queue.Queue[Trained] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="analytics-trainer", daemon=True)

    def start(self) -> None:
        """Start the worker."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the fit in progress."""
        self._requests.put(None)
        if self._thread.is_alive():
            self._thread.join(60)

    def submit(
        self, key: AssetKey, start_ns: int, end_ns: int, reason: str, *, min_span_s: float = 0.0
    ) -> TrainRequest:
        """Queue a fit; wait on the request's ``done`` for its outcome."""
        if end_ns <= start_ns:
            raise ValueError("end must be after start")
        request = TrainRequest(key, start_ns, end_ns, reason, min_span_s=min_span_s)
        self._requests.put(request)
        return request

    def submit_refit(self, key: AssetKey, reason: str) -> TrainRequest:
        """Queue a refit of the stored baseline (e.g. with a new threshold factor)."""
        now = self._clock_ns()
        request = TrainRequest(key, now - 1, now, reason, from_store=True)
        self._requests.put(request)
        return request

    def ready(self) -> list[Trained]:
        """Fitted models not yet swapped in."""
        found = []
        while True:
            try:
                found.append(self._ready.get_nowait())
            except queue.Empty:
                return found

    def train(self, request: TrainRequest) -> Trained:
        """Build, fit, warm up and save (on the calling thread); ValueError/InfluxError."""
        now_s = self._clock_ns() / 1e9
        if request.from_store:
            found = self._store.load(request.key)
            if found is None:
                raise ValueError(f"no stored model of {request.key[0]}/{request.key[1]}")
            baseline = found[0]
        else:
            points = self.read(request.key, request.start_ns, request.end_ns)
            keep = make_keep(
                request.key,
                self._labels,
                self._limits(request.key),
                now_s,
                own_alarms=request.reason != "repair",
            )
            baseline = build_baseline(points, keep=keep, max_rows=self._max_rows)
            span_s = baseline.end_s - baseline.start_s
            if span_s < request.min_span_s:
                raise ValueError(
                    f"stored history spans {span_s:.0f} s, a first fit needs "
                    f"{request.min_span_s:.0f} s"
                )
        factor = self._labels.threshold_factor(request.key, now_s)
        scorer = fit_scorer(baseline, factor)
        scored_until = self.warm_up(request.key, baseline, scorer, now_s)
        meta = self._store.save(
            request.key, baseline, threshold_factor=factor, reason=request.reason
        )
        request.result = {
            k: meta[k]
            for k in (
                "site",
                "asset",
                "sensors",
                "rows",
                "train_start_s",
                "train_end_s",
                "threshold_factor",
                "reason",
            )
        }
        return Trained(request.key, baseline, scorer, meta["fitted_at_s"], scored_until)

    def warm_up(self, key: AssetKey, baseline: Baseline, scorer: AssetModel, now_s: float) -> float:
        """Feed the last warm_s of data after the baseline through the scorer; time reached."""
        since_s = max(baseline.end_s, now_s - self._warm_s)
        if since_s >= now_s:
            return baseline.end_s
        limits = self._limits(key)
        last = dict(zip(baseline.sensors, baseline.values[-1].tolist(), strict=True))
        reached = baseline.end_s
        for t_ns, row in self.read(key, int(since_s * 1e9) + 1, int(now_s * 1e9)):
            # Values outside physical limits are held at the last good one, as live.
            last.update((s, v) for s, v in row.items() if in_limits({s: v}, limits))
            reached = t_ns / 1e9
            scorer.update([last[s] for s in baseline.sensors], reached)
        return reached

    def read(self, key: AssetKey, start_ns: int, end_ns: int) -> Points:
        """An asset's points in [start_ns, end_ns], time order (one InfluxQL query)."""
        query = (
            f"SELECT * FROM {quote_ident(self._measurement)} "  # noqa: S608 (quoted)
            f"WHERE site = {quote_literal(key[0])} AND asset = {quote_literal(key[1])} "
            f"AND time >= {int(start_ns)} AND time <= {int(end_ns)}"
        )
        points: Points = []
        for series in self._influx.query(query):
            sensors = [
                (i, c)
                for i, c in enumerate(series.columns)
                if c not in ("time", "quality", "site", "asset")
            ]
            for raw in series.values:
                row = {c: v for i, c in sensors if (v := as_float(raw[i])) == v}
                if row:
                    points.append((as_int(raw[0]), row))
        points.sort(key=lambda p: p[0])
        return points

    def _run(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            try:
                self._ready.put(self.train(request))
                self._on_result(request.reason, "ok")
                logger.info("%s/%s: retrained (%s)", *request.key, request.reason)
            except (ValueError, InfluxError, ModelRejectedError) as exc:
                request.error = str(exc)
                self._on_result(request.reason, "failed")
                if request.reason == HISTORY and isinstance(exc, ValueError):
                    # Too little history: the asset learns from live data instead.
                    logger.info("%s/%s: no first fit on history: %s", *request.key, exc)
                else:
                    logger.warning("%s/%s: training failed: %s", *request.key, exc)
            except Exception as exc:
                request.error = f"internal error: {exc}"
                self._on_result(request.reason, "failed")
                logger.exception("%s/%s: training failed", *request.key)
            finally:
                request.done.set()
