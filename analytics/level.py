"""Per-sensor level channel: short mean minus a lagged, gated slow baseline, in adaptive units.

For each sensor, every row::

    feature = mean of the last ``window_s`` seconds - slow EWMA baseline (tau ``baseline_tau_s``)
              as it stood ``window_s`` seconds ago
    z       = (feature - training median) / scale

``score_samples`` / ``update`` return ``max |z|`` over sensors (higher = more anomalous).

Gating (why it cannot latch and why a step is not absorbed):

* the baseline of a sensor whose ``|z| >= freeze_z`` stops following it at the normal rate and
  leaks ``frozen_tau_factor`` times more slowly instead, so a step fault is not learned within
  the baseline horizon (and its recovery does not flip the sign), but any persistent change is
  eventually taken as the new normal: no alarm can hold forever on a frozen baseline;
* the scale is an EW variance (tau ``scale_tau_s``) of the feature clipped at ``freeze_z``
  scales, never below its training variance. It learns the long-run wander that a few minutes
  of training cannot show. It is updated per sensor whenever *that* sensor is inside its normal
  range, whatever the alarm state: the sensors that are not driving an alarm keep learning, so a
  drift-caused alarm does not freeze every scale and latch.

Everything is in seconds of the data's own time column.

``TrainingEnvelope`` (below) is the long-horizon companion: slow levels against the frozen
range of the whole training span, for faults that develop too slowly for the adaptive channel.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import deque
from statistics import NormalDist
from typing import Self

import numpy as np
import numpy.typing as npt

from analytics.recovery import ExcursionMemory

FloatArray = npt.NDArray[np.float64]
# Training rows with a full window and lag, at the least (the service asks for many more).
MIN_READY_ROWS = 5
# Rows the window buffer holds before it is compacted (and doubled if the window needs it):
# 20 s at 1 Hz is 20 rows, so the compaction copies a few rows once every ~40 rows.
WINDOW_ROWS = 64
BoolArray = npt.NDArray[np.bool_]


class SensorLevels:
    """Streaming per-sensor level deviation scorer; ``fit`` on normal rows, then ``update``."""

    def __init__(
        self,
        *,
        window_s: float = 20.0,
        baseline_tau_s: float = 600.0,
        scale_tau_s: float = 1200.0,
        freeze_z: float = 5.0,
        frozen_tau_factor: float = 10.0,
        rel_scale_floor: float = 1e-3,
        recovery: ExcursionMemory | None = None,
    ) -> None:
        self.window_s = window_s
        # Return to normal (analytics.recovery): None = the default memory.
        self.recovery = recovery
        self.baseline_tau_s = baseline_tau_s
        self.scale_tau_s = scale_tau_s
        self.freeze_z = freeze_z
        self.frozen_tau_factor = frozen_tau_factor
        self.rel_scale_floor = rel_scale_floor

    # -- state helpers ------------------------------------------------------------------------

    def _reset(self, first: FloatArray, t0: float) -> None:
        self._hist: deque[tuple[float, FloatArray]] = deque()
        self._last = np.where(np.isfinite(first), first, 0.0)
        self._window_rows(len(self._last))
        self.baseline_ = self._last.copy()
        self._t: float | None = None
        self._t0 = t0

    def _window_rows(self, n: int) -> None:
        """Start the window's row buffer: rows ``_lo:_hi`` of ``_rows`` (times ``_row_t``)."""
        self._rows = np.empty((WINDOW_ROWS, n))
        self._row_t: list[float] = []
        self._lo = 0

    def _mean(self, row: FloatArray, t: float) -> FloatArray:
        """Causal mean of the last ``window_s`` seconds (missing values hold the last one).

        The window's rows sit in order in one buffer, so the mean is one reduction over a
        slice: the same sum, in the same order, as ``np.mean`` of the rows as a list, at a
        fifth of the cost (no list, no array built per row).
        """
        self._last = last = np.where(np.isfinite(row), row, self._last)
        if "_rows" not in self.__dict__:  # pickled before the buffer: take over the deque
            self._adopt_window()
        times, lo = self._row_t, self._lo
        hi = len(times)
        if hi == len(self._rows):  # full: move the window's rows to the front (or grow)
            keep = self._rows[lo:hi]
            if 2 * len(keep) > len(self._rows):
                self._rows = np.empty((2 * len(self._rows), self._rows.shape[1]))
            self._rows[: len(keep)] = keep
            del times[:lo]
            lo, hi = 0, len(times)
        self._rows[hi] = last
        times.append(t)
        hi += 1
        cutoff = t - self.window_s
        while lo < hi and times[lo] <= cutoff:
            lo += 1
        self._lo = lo
        return np.asarray(np.add.reduce(self._rows[lo:hi], axis=0) / (hi - lo))

    def _adopt_window(self) -> None:
        old: deque[tuple[float, FloatArray]] = self.__dict__.pop("_win", deque())
        self._window_rows(len(self._last))
        for t, values in old:
            self._rows[len(self._row_t)] = values
            self._row_t.append(t)

    def _lagged_baseline(self, t: float) -> FloatArray:
        """The baseline as it stood ``window_s`` seconds ago (the oldest kept before that)."""
        while len(self._hist) > 1 and self._hist[1][0] <= t - self.window_s:
            self._hist.popleft()
        return self._hist[0][1] if self._hist else self.baseline_

    def _step(self, t: float, learn: BoolArray | bool) -> None:
        """Advance the baseline to time ``t``; sensors not in ``learn`` leak slowly."""
        dt = 0.0 if self._t is None else max(t - self._t, 0.0)
        self._t = t
        fast = _alpha(dt, self.baseline_tau_s)
        if learn is True:  # every sensor learns (the usual row): one rate, no mask
            rate: FloatArray | float = fast
        elif learn is False:
            rate = _alpha(dt, self.baseline_tau_s * self.frozen_tau_factor)
        else:
            rate = np.where(learn, fast, _alpha(dt, self.baseline_tau_s * self.frozen_tau_factor))
        # A new array every row (never changed in place but by ``_reanchor``, which rewrites
        # the history too), so the history can keep it without a copy.
        self.baseline_ = self.baseline_ + rate * (self._last - self.baseline_)
        self._hist.append((t, self.baseline_))

    def _deviation(self, row: FloatArray, t: float) -> FloatArray:
        return self._mean(row, t) - self._lagged_baseline(t)

    # -- training -----------------------------------------------------------------------------

    def fit(self, values: npt.ArrayLike, times_s: npt.ArrayLike) -> Self:
        """Learn medians, scales and the baseline start from normal rows (n_rows, n_sensors)."""
        vals = np.asarray(values, dtype=np.float64)
        times = np.asarray(times_s, dtype=np.float64)
        first = np.nanmean(vals[times - times[0] < self.window_s], axis=0)
        self._reset(np.asarray(first, dtype=np.float64), float(times[0]))
        devs = []
        for row, t in zip(vals, times, strict=True):
            devs.append(self._deviation(row, float(t)))
            self._step(float(t), True)
        ready = times - times[0] >= 2 * self.window_s  # window and lag both filled
        if ready.sum() < MIN_READY_ROWS:
            raise ValueError(
                f"too few training rows for the level window: n_samples={len(vals)}, of which "
                f"{int(ready.sum())} have a full window (need {MIN_READY_ROWS})"
            )
        every = np.asarray(devs)
        train = every[ready]
        self.center_ = np.asarray(np.median(train, axis=0), dtype=np.float64)
        level = np.abs(np.nanmean(vals, axis=0))
        floor = self.rel_scale_floor * level + 1e-9
        self.scale0_ = np.asarray(np.maximum(train.std(axis=0), floor), dtype=np.float64)
        self.var_ = self.scale0_**2
        self.var0_ = self.var_.copy()
        self.fit_baseline_ = self.baseline_.copy()
        # The variation the sensor showed in training (raw values), for "settled again".
        spread = np.nan_to_num(np.nanstd(vals, axis=0))
        self.spread_ = np.asarray(np.maximum(spread, self.scale0_), dtype=np.float64)
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        self.memory_ = copy.deepcopy(self.recovery or ExcursionMemory())
        # A trend needs a few samples, and settling a few rows, whatever the sampling interval.
        memory = self.memory_
        memory.trend_s = max(memory.trend_s, memory.min_trend_samples * step)
        memory.settle_s = max(memory.settle_s, 2.0 * step)
        memory.start(self.spread_)
        # Scores of the filled training rows (for the threshold), and of every row (for replay).
        self.training_scores_ = np.abs((train - self.center_) / self.scale0_).max(axis=1)
        self.row_scores_ = np.where(ready, np.abs((every - self.center_) / self.scale0_).max(1), 0)
        return self

    # -- streaming ----------------------------------------------------------------------------

    def update(self, row: npt.ArrayLike, t: float, *, learn: bool = True) -> FloatArray:
        """z of every sensor for one row, then adapt (``learn=False`` freezes all sensors)."""
        return self.advance(np.asarray(row, dtype=np.float64), t, learn=learn)[0]

    def advance(self, row: FloatArray, t: float, *, learn: bool = True) -> tuple[FloatArray, float]:
        """``update`` of a float row, with the largest |z| it returns (the row's score).

        The usual row (no sensor out of its normal range, no excursion open) takes no mask:
        the same arithmetic as the masked form, without the masks.
        """
        dt = 0.0 if self._t is None else max(t - self._t, 0.0)
        mean = self._mean(row, t)
        err = mean - self._lagged_baseline(t) - self.center_
        scale = np.sqrt(self.var_)
        z: FloatArray = err / scale
        absz = np.abs(z)
        peak = float(np.maximum.reduce(absz))  # ``absz.max()`` without its Python wrapper
        # A NaN max is not calm: the masks then decide, as they always did.
        calm = peak < self.freeze_z
        normal = None if calm else absz < self.freeze_z
        memory = getattr(self, "memory_", None)  # models pickled before it existed: none
        quiet: BoolArray | None = None
        ended: BoolArray | None = None
        if memory is not None:
            if normal is None and not memory.open:
                memory.record(t, self._last)  # what ``update`` returns at once on such a row
            else:
                out = np.zeros(len(z), dtype=bool) if normal is None else ~normal
                quiet, ended = memory.update(mean - self.center_, err, self._last, out, t)
        if learn:
            a = _alpha(dt, self.scale_tau_s)
            clipped = np.minimum(np.square(err), np.square(self.freeze_z * scale))  # = x**2
            var0 = self.__dict__.get("var0_")
            var0 = self.scale0_**2 if var0 is None else var0  # pickled before it: compute
            target = np.maximum(var0, self.var_ + a * (clipped - self.var_))
            self.var_ = target if normal is None else np.where(normal, target, self.var_)
            self._step(t, True if normal is None else normal)
        else:
            self._step(t, False)
        if ended is not None and ended.any():
            self._reanchor(ended, mean)
        # Sensors returning from an excursion, or settled again, do not count (recovery.py).
        if quiet is None or not quiet.any():
            return z, peak
        z = np.where(quiet, 0.0, z)
        return z, float(np.abs(z).max())

    def _reanchor(self, sensors: BoolArray, mean: FloatArray) -> None:
        """Take the sensors' current level as their new normal (their excursion is over)."""
        level = mean - self.center_
        self.baseline_ = np.where(sensors, level, self.baseline_)
        for _, past in self._hist:
            past[sensors] = level[sensors]

    def pause(self, t: float) -> None:
        """Let time pass without taking the row (machine stopped): nothing moves or learns."""
        self._t = t if self._t is None else max(t, self._t)

    def track(self, row: npt.ArrayLike, t: float) -> FloatArray:
        """z of every sensor, with every baseline following the row at the normal rate.

        For the warm-up after a restart: levels are expected to be far from normal and to
        come back, so the gating that would keep them out of the baseline does not apply and
        the scales (what normal wander is) do not learn from them.
        """
        err = self._deviation(np.asarray(row, dtype=np.float64), t) - self.center_
        self._step(t, True)
        memory = getattr(self, "memory_", None)
        if memory is not None:
            memory.close()  # a restart is a new start: no excursion carries over
        return np.asarray(err / np.sqrt(self.var_), dtype=np.float64)

    def gaussian_quantile(self, quantile: float) -> float:
        """The ``quantile`` of max |z| over the sensors if every z were independent N(0, 1).

        A few hundred autocorrelated training rows hold only a few dozen independent samples,
        so their empirical tail under-estimates the normal one; this is the least a tail
        quantile of standardised deviations can be.
        """
        k = len(self.center_)
        return NormalDist().inv_cdf(1.0 - (1.0 - quantile) / (2.0 * k))

    def score_samples(self, z: FloatArray) -> FloatArray:
        """Score (max |z| over sensors) of z rows (n_rows, n_sensors)."""
        return np.asarray(np.abs(np.atleast_2d(z)).max(axis=1), dtype=np.float64)

    def contributions(self, z: FloatArray) -> FloatArray:
        """Per-sensor shares (z^2 normalised to sum 1) of z rows."""
        sq = np.atleast_2d(z) ** 2
        total = sq.sum(axis=1, keepdims=True)
        return np.asarray(sq / np.where(total > 0, total, 1.0), dtype=np.float64)

    def baseline_shift(self) -> FloatArray:
        """How far each sensor's baseline moved since training, in training-scale units."""
        return np.asarray(np.abs(self.baseline_ - self.fit_baseline_) / self.scale0_)


@functools.lru_cache(maxsize=256)
def _alpha(dt: float, tau_s: float) -> float:
    """EWMA weight for a step of ``dt`` seconds (0 for tau <= 0 or infinite).

    Memoised: readings come at a few fixed intervals, and this runs six times a row.
    """
    if not math.isfinite(tau_s) or tau_s <= 0:
        return 0.0
    return -math.expm1(-dt / tau_s)


class TrainingEnvelope:
    """Long-horizon channel: slow per-sensor levels against the frozen training envelope.

    The adaptive level channel follows drift by design, so a fault that develops over days
    (bearing wear, a clogging filter) can be learned as the new normal. This channel never
    learns after ``fit``: it keeps an EWMA (``tau_s``) of each sensor and scores how far it
    lies *outside* the range its own EWMA covered in training (``quantile`` .. 1 - ``quantile``),
    in units of the spread of that side's training tail. Within that range it scores 0, so load
    cycles, shifts and weather seen in training never count.

    It is only meaningful when training covered the machine's operating cycles, so it stays
    inactive (``active_`` False, scores 0) unless the training span is at least ``min_span_s``
    (default one day: the daily cycle of load, shifts and ambient that dominates plants and
    buildings). A few minutes of training (SKAB's 400 rows) therefore leave it idle.
    """

    def __init__(
        self,
        *,
        tau_s: float = 1800.0,
        quantile: float = 0.001,
        min_span_s: float = 86400.0,
        threshold: float = 3.0,
        fast_fraction: float = 0.05,
    ) -> None:
        self.tau_s = tau_s
        # Return to normal: the excess counts only while a faster level (time constant
        # ``fast_fraction`` x ``tau_s``) is out of the envelope too. A slow drift has both out;
        # once a fault has ended the slow EWMA only lags behind a machine already back inside
        # its range (device_sims cavitation: an hour of alarm after the fault ended, before).
        self.fast_fraction = fast_fraction
        self.quantile = quantile
        self.min_span_s = min_span_s
        # Excess (in robust training sd) at which the channel reaches the alarm threshold: three
        # sd beyond the most extreme slow level of the whole training span.
        self.threshold = threshold

    def fit(self, values: npt.ArrayLike, times_s: npt.ArrayLike) -> Self:
        """Learn the envelope of the slow levels of normal rows (n_rows, n_sensors)."""
        vals = np.asarray(values, dtype=np.float64)
        times = np.asarray(times_s, dtype=np.float64)
        # Span covered by the rows, counting the last row's own sampling interval (a day of
        # 10 s readings spans 86,390 s between its first and last timestamp).
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        self.active_ = bool(times[-1] - times[0] + step >= self.min_span_s)
        first = np.nanmedian(vals, axis=0)
        self._last = np.where(np.isfinite(first), first, 0.0)
        self.level_ = self._last.copy()
        self.fast_ = self._last.copy()
        self._t: float | None = None
        slow = np.array([self._advance(row, float(t)) for row, t in zip(vals, times, strict=True)])
        # Skip the EWMA start-up (three time constants) when there is enough left.
        keep = times - times[0] >= 3 * self.tau_s
        train = slow[keep] if keep.sum() >= 10 else slow
        lo, q10, q90, hi = np.quantile(
            train, [self.quantile, 0.1, 0.9, 1.0 - self.quantile], axis=0
        )
        self.lo_, self.hi_ = lo, hi
        # Each side's excess is measured in the spread of that side's own tail (Gaussian-
        # equivalent sd between the 0.1/0.9 quantile and the envelope edge), not in the spread
        # of the bulk: a machine that is off most of the week (office hours, two shifts) has a
        # bulk of near-identical "off" values, whose spread says nothing about how far its
        # running extremes wander.
        gap = NormalDist().inv_cdf(1.0 - self.quantile) - NormalDist().inv_cdf(0.9)
        # A sensor that hardly moves in training (a set point, a rail voltage) still gets a
        # scale: its raw noise, or a thousandth of its level.
        raw = np.nanstd(np.diff(vals, axis=0), axis=0) / np.sqrt(2.0)
        floor = np.maximum(np.nan_to_num(raw), 1e-3 * np.abs(first) + 1e-9)
        self.scale_hi_ = np.asarray(np.maximum((hi - q90) / gap, floor), dtype=np.float64)
        self.scale_lo_ = np.asarray(np.maximum((q10 - lo) / gap, floor), dtype=np.float64)
        return self

    def _advance(self, row: FloatArray, t: float) -> FloatArray:
        dt = 0.0 if self._t is None else max(t - self._t, 0.0)
        self._t = t if self._t is None else max(t, self._t)
        self._last = np.where(np.isfinite(row), row, self._last)
        self.level_ = self.level_ + _alpha(dt, self.tau_s) * (self._last - self.level_)
        fast = _alpha(dt, self.tau_s * self.fast_fraction)
        self.fast_ = self.fast_ + fast * (self._last - self.fast_)
        return self.level_

    def pause(self, t: float) -> None:
        """Let time pass without taking the row (machine stopped or restarting)."""
        self._t = t if self._t is None else max(t, self._t)

    def update(self, row: npt.ArrayLike, t: float) -> FloatArray:
        """Excess of every sensor's slow level beyond the training envelope, in training sd."""
        if not self.active_:
            return np.zeros_like(self.level_)  # idle: not even the EWMA is needed
        slow = self._advance(np.asarray(row, dtype=np.float64), t)
        fast = getattr(self, "fast_", slow)  # models fitted before it existed: slow only
        low = np.maximum(self.lo_ - np.maximum(slow, fast), 0.0) / self.scale_lo_
        high = np.maximum(np.minimum(slow, fast) - self.hi_, 0.0) / self.scale_hi_
        return np.asarray(low + high, dtype=np.float64)
