"""Return to normal: per-sensor memory of an excursion, to tell a sensor coming back from one
from a sensor holding at an abnormal level.

A level channel measures each sensor against a baseline that stops learning while the sensor
is out of its normal range, so a step fault is not absorbed. The price is that nothing tells it
when the condition is over: a motor temperature that dipped and now recovers at its thermal
time constant, or a flow that came back from a closed valve to a level a little off the one
before, still lies far from the frozen baseline, and the alarm never clears (SKAB valve2, the
blind-set failure). This memory gives each sensor, from the moment it leaves its normal range,
the extreme deviation it reached from the reference it left (its frozen baseline), and
classifies it every row as one of:

* **away** (holding, or moving away from the reference): scored as usual, so a sustained shift
  to an abnormal level stays in alarm;
* **returning**: it has come back at least ``return_min`` of its excursion from the extreme,
  and its raw values over the last ``trend_s`` seconds move toward the reference with a slope
  at least ``trend_z`` standard errors from zero (judged on the window's own scatter, so a noisy
  fault cannot fake a return the way training noise levels would let it);
* **settled**: back within ``near_fraction`` of its excursion of the reference (or past it) and
  within ``settle_k`` training spreads of it (the variation the machine showed in training),
  for ``settle_s`` seconds: the excursion is over. The caller re-anchors the sensor's baseline
  at its new level, which re-arms it for the next fault.

Returning and settled sensors do not count toward the alarm. Deviations are signed, in the
sensor's own units, against the (frozen) baseline.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ExcursionMemory:
    """Per-sensor excursion state; ``update`` returns (quiet mask, ended mask) for one row."""

    def __init__(
        self,
        *,
        return_min: float = 0.05,
        trend_s: float = 60.0,
        trend_z: float = 4.0,
        trend_exit_z: float = 1.0,
        hold_windows: float = 4.0,
        min_trend_samples: int = 5,
        near_fraction: float = 0.25,
        settle_k: float = 2.0,
        settle_s: float = 20.0,
    ) -> None:
        self.return_min = return_min
        self.trend_s = trend_s
        self.trend_z = trend_z
        self.trend_exit_z = trend_exit_z
        self.hold_windows = hold_windows
        self.min_trend_samples = min_trend_samples
        self.near_fraction = near_fraction
        self.settle_k = settle_k
        self.settle_s = settle_s

    def start(self, spread: FloatArray) -> None:
        """Reset; ``spread`` = each sensor's training spread of its raw values."""
        n = len(spread)
        self.spread_ = np.asarray(spread, dtype=np.float64)
        self.active_ = np.zeros(n, dtype=bool)
        self.extreme_ = np.zeros(n)
        self.reference_ = np.zeros(n)
        self.extreme_t_ = np.zeros(n)
        self.returning_ = np.zeros(n, dtype=bool)
        self.settled_since_ = np.full(n, np.nan)
        self._recent: deque[tuple[float, FloatArray]] = deque()
        self._open = False

    @property
    def open(self) -> bool:
        """Whether any sensor is in an excursion (``active_``), as of the last row.

        Kept as a flag by ``update`` so the usual row needs no array reduction to know it;
        whoever sets ``active_`` directly calls ``close`` or ``update``. Memories pickled before
        the flag existed say True (the caller then takes the full ``update``, which sets it).
        """
        return bool(self.__dict__.get("_open", True))

    def close(self) -> None:
        """End every excursion (a restart is a new start: nothing carries over)."""
        self.active_[:] = False
        self._open = False

    def record(self, t: float, raw: FloatArray) -> None:
        """Keep a row's raw values for the trend (what ``update`` does first on every row).

        ``raw`` is kept as it is, not copied: the caller passes an array it never changes.
        """
        recent = self._recent
        recent.append((t, raw))
        cutoff = t - self.hold_windows * self.trend_s
        while recent and recent[0][0] < cutoff:
            recent.popleft()

    def update(
        self, level: FloatArray, err: FloatArray, raw: FloatArray, out: BoolArray, t: float
    ) -> tuple[BoolArray, BoolArray]:
        """Advance one row.

        ``level``: each sensor's smoothed level; ``err``: its signed deviation from the
        baseline (the same units); ``raw``: the raw values; ``out``: out of the normal range.
        Returns ``quiet`` (returning or settled: not to be counted) and ``ended`` (the
        excursion is over: re-anchor these sensors' baselines now).
        """
        self.record(t, np.asarray(raw, dtype=np.float64).copy())
        if not (out.any() or self.active_.any()):
            # Nothing out of range and no excursion open: the usual row, and the cheapest.
            self._open = False
            return np.zeros(len(out), dtype=bool), np.zeros(len(out), dtype=bool)
        begin = out & ~self.active_
        self.active_ |= begin
        # The reference is the baseline the sensor left, kept as it was: the frozen baseline
        # itself leaks toward the excursion, which would move "back to normal" with it.
        self.reference_ = np.where(begin, level - err, self.reference_)
        self.extreme_ = np.where(begin, err, self.extreme_)
        self.extreme_t_ = np.where(begin, t, self.extreme_t_)
        self.returning_ &= ~begin
        active = self.active_
        self._open = bool(active.any())
        if not self._open:
            return active.copy(), active.copy()
        err = level - self.reference_
        size = np.maximum(np.abs(self.extreme_), 1e-12)
        # Fraction of the excursion still to go: 1 at the extreme, 0 at the reference, < 0 past.
        togo = np.sign(self.extreme_) * err / size
        further = active & (togo > 1.0)
        self.extreme_ = np.where(further, err, self.extreme_)
        self.extreme_t_ = np.where(further, t, self.extreme_t_)
        togo = np.minimum(togo, 1.0)
        back = -np.sign(self.extreme_)
        toward = back * self._trend_z(active, t - self.trend_s)
        # Hysteresis: a return is recognised at ``trend_z`` over ``trend_s`` and lasts while the
        # slope since the extreme (over at most ``hold_windows`` times as long) still points
        # back (``trend_exit_z``): a slowing first-order recovery, or one that pauses, stays a
        # return; a stall ends it within a few windows.
        start = (togo <= 1.0 - self.return_min) & (toward >= self.trend_z)
        held = self.returning_ & ~start
        still = np.zeros(len(held), dtype=bool)
        for k in np.flatnonzero(held):
            # The slope since the extreme (at most the hold window): the way back so far.
            one = np.zeros(len(held), dtype=bool)
            one[k] = True
            still[k] = back[k] * self._trend_z(one, self.extreme_t_[k])[k] >= self.trend_exit_z
        self.returning_ = active & (start | (held & still))
        returning = self.returning_
        settled = active & (togo <= self.near_fraction)
        settled &= np.abs(err) <= self.settle_k * self.spread_
        since = np.where(np.isnan(self.settled_since_), t, self.settled_since_)
        self.settled_since_ = np.where(settled, since, np.nan)
        # Over once settled and no longer moving back (a re-anchor mid-return would take the
        # rest of the return for a new excursion).
        ended = settled & ~returning & (t - self.settled_since_ >= self.settle_s)
        self.active_ &= ~ended
        self.returning_ &= ~ended
        self._open = bool(self.active_.any())
        return returning | settled, ended

    def _trend_z(self, sensors: BoolArray, since: float) -> FloatArray:
        """Slope of each sensor's raw values since ``since``, in standard errors."""
        z = np.zeros(len(sensors))
        recent = [(t, v) for t, v in self._recent if t >= since]
        if len(recent) < self.min_trend_samples:
            return z
        times = np.array([t for t, _ in recent])
        ys = np.array([v for _, v in recent])[:, sensors]
        x = times - times.mean()
        sxx = float(np.dot(x, x))
        if sxx <= 0:
            return z
        ys = ys - np.nanmean(ys, axis=0)
        ys = np.nan_to_num(ys)
        slope = x @ ys / sxx
        resid = ys - np.outer(x, slope)
        dof = max(len(x) - 2, 1)
        stderr = np.sqrt((resid**2).sum(axis=0) / dof / sxx)
        z[sensors] = slope / np.maximum(stderr, 1e-12)
        return z
