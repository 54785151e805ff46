"""Seasonal baseline for slow series: a level plus a time-of-day / day-of-week profile.

A room, an ambient or a chiller supply temperature read every few minutes or hours has none of
the machine dynamics the level channel (analytics.level) is built for: its windows and baselines
are seconds to minutes, so at hourly readings it only compares each reading with the previous
one. What such a series does have is a cycle: occupied hours and nights, weekdays and weekends,
and a season underneath. Each sensor is modelled as::

    value = level + profile[slot] + residual

``slot`` is the hour of the week when training spans two weeks or more (a profile per weekday
and hour), else the hour of the day; ``level`` is a slow EWMA (``level_tau_s``) of the value
minus its profile, so seasons and gentle drifts are followed; ``profile`` keeps learning too,
each slot moving a ``1 / profile_visits`` step towards what it sees at each visit, so the shape
follows a change of season (a winter building has no weekend dip) over a few weeks. The score is
the residual smoothed over ``smooth_s`` (a failing air conditioner shows as hours of warmth, not
as one reading), in units of its own typical size.

Gating, as in the level channel: a sensor whose ``|z|`` reaches ``freeze_z`` stops teaching its
level, profile and scale (its level leaks ``frozen_tau_factor`` times more slowly), so a
failure is not learned as the new normal within the alarm, yet a lasting change is eventually
accepted. Times are the data's own epoch seconds; slots are in UTC hours (a constant local
offset only renames them; a daylight-saving change moves the profile by an hour for a few weeks).
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

HOUR_S = 3600.0
DAY_S = 86400.0
WEEK_S = 7 * DAY_S


def slow_series(times_s: npt.ArrayLike, n_sensors: int) -> bool:
    """Whether an asset's training data calls for the seasonal baseline.

    Readings five minutes apart or more carry no machine dynamics; one or two sensors watched
    over two days or more are the room / ambient / supply temperatures whose story is their
    daily cycle. Everything else keeps the machine channels (analytics.scorer).
    """
    times = np.asarray(times_s, dtype=np.float64)
    if len(times) < 2:
        return False
    step = float(np.median(np.diff(times)))
    span = float(times[-1] - times[0]) + step
    return span >= 2 * DAY_S and (step >= 300.0 or n_sensors <= 2)


def _alpha(dt: float, tau_s: float) -> float:
    return -math.expm1(-dt / tau_s) if tau_s > 0 else 1.0


class SeasonalLevels:
    """Per-sensor seasonal residual scorer; ``fit`` on normal rows, then ``update``."""

    def __init__(
        self,
        *,
        slot_s: float = HOUR_S,
        level_tau_s: float = 7 * DAY_S,
        profile_visits: float = 4.0,
        smooth_s: float = 6 * HOUR_S,
        scale_tau_s: float = 28 * DAY_S,
        freeze_z: float = 3.0,
        frozen_tau_factor: float = 10.0,
    ) -> None:
        self.slot_s = slot_s
        self.level_tau_s = level_tau_s
        self.profile_visits = profile_visits
        self.smooth_s = smooth_s
        self.scale_tau_s = scale_tau_s
        self.freeze_z = freeze_z
        self.frozen_tau_factor = frozen_tau_factor

    # -- training -----------------------------------------------------------------------------

    def fit(self, values: npt.ArrayLike, times_s: npt.ArrayLike) -> Self:
        """Learn profile, level, scale and the training scores from normal rows."""
        vals = np.asarray(values, dtype=np.float64)
        times = np.asarray(times_s, dtype=np.float64)
        step = float(np.median(np.diff(times))) if len(times) > 1 else self.slot_s
        span = float(times[-1] - times[0]) + step
        self.period_s_ = WEEK_S if span >= 2 * WEEK_S else DAY_S
        self.slots_ = round(self.period_s_ / self.slot_s)
        self.profile_ = self._initial_profile(vals, times)
        first = times - times[0] < min(self.period_s_, span / 2)
        start = np.nanmean(vals[first] - self.profile_[self._slot_index(times[first])], axis=0)
        self.level_ = np.nan_to_num(np.asarray(start, dtype=np.float64))
        self.smooth_ = np.zeros(vals.shape[1])
        # Scale: the typical smoothed residual, from a first pass over the training rows.
        self.var_ = np.full(vals.shape[1], np.inf)
        self._t: float | None = None
        smoothed = np.array(
            [self._advance(row, float(t), learn=False) for row, t in zip(vals, times, strict=True)]
        )
        settled = times - times[0] >= self.smooth_s
        sample = smoothed[settled] if settled.sum() >= 10 else smoothed
        floor = 1e-3 * np.abs(np.nanmean(vals, axis=0)) + 1e-9
        self.scale0_ = np.asarray(np.maximum(np.nanstd(sample, axis=0), floor), dtype=np.float64)
        self.var_ = self.scale0_**2
        z = np.nan_to_num(np.abs(smoothed / self.scale0_)).max(axis=1)
        # Scores of the settled training rows (for the threshold), and of every row (replay).
        self.training_scores_ = np.asarray(z[settled] if settled.sum() >= 10 else z)
        self.row_scores_ = np.asarray(np.where(settled, z, 0.0), dtype=np.float64)
        self.fit_level_ = self.level_.copy()
        return self

    def _slot_index(self, times: FloatArray) -> npt.NDArray[np.int_]:
        return np.asarray(np.floor(times / self.slot_s) % self.slots_, dtype=np.int_)

    def _initial_profile(self, vals: FloatArray, times: FloatArray) -> FloatArray:
        """Median of the detrended values per slot (detrended by a centred one-period mean)."""
        stamps = pd.to_datetime(times, unit="s")
        frame = pd.DataFrame(vals, index=stamps)
        trend = frame.rolling(pd.Timedelta(seconds=self.period_s_), center=True, min_periods=1)
        detrended = (frame - trend.mean()).to_numpy()
        slots = self._slot_index(times)
        profile = np.zeros((self.slots_, vals.shape[1]))
        # A slot no training row fell into takes the same hour of the day's median, else 0.
        day_slots = round(DAY_S / self.slot_s)
        for k in range(self.slots_):
            rows = detrended[slots == k]
            if not len(rows):
                rows = detrended[slots % day_slots == k % day_slots]
            if len(rows):
                profile[k] = np.nan_to_num(np.nanmedian(rows, axis=0))
        return profile

    # -- streaming ----------------------------------------------------------------------------

    def _advance(self, row: FloatArray, t: float, *, learn: bool) -> FloatArray:
        """Smoothed residual of every sensor at ``t``, then adapt (gated per sensor)."""
        dt = self.slot_s if self._t is None else max(t - self._t, 0.0)
        self._t = t if self._t is None else max(t, self._t)
        slot = int(math.floor(t / self.slot_s) % self.slots_)
        seen = np.isfinite(row)
        x = np.where(seen, row, 0.0)
        resid = x - self.level_ - self.profile_[slot]
        self.smooth_ = np.where(
            seen, self.smooth_ + _alpha(dt, self.smooth_s) * (resid - self.smooth_), self.smooth_
        )
        z = self.smooth_ / np.sqrt(self.var_)
        if learn:
            normal = seen & (np.abs(z) < self.freeze_z)
            fast = _alpha(dt, self.level_tau_s)
            slow = _alpha(dt, self.level_tau_s * self.frozen_tau_factor)
            rate = np.where(normal, fast, np.where(seen, slow, 0.0))
            self.level_ = self.level_ + rate * (x - self.profile_[slot] - self.level_)
            shape = np.where(normal, 1.0 / self.profile_visits, 0.0)
            self.profile_[slot] += shape * (x - self.level_ - self.profile_[slot])
            a = _alpha(dt, self.scale_tau_s)
            clipped = np.minimum(self.smooth_**2, (self.freeze_z**2) * self.var_)
            target = np.maximum(self.scale0_**2, self.var_ + a * (clipped - self.var_))
            self.var_ = np.where(normal, target, self.var_)
        else:
            self.level_ = np.where(
                seen,
                self.level_
                + _alpha(dt, self.level_tau_s) * (x - self.profile_[slot] - self.level_),
                self.level_,
            )
        return np.asarray(self.smooth_, dtype=np.float64)

    def update(self, row: npt.ArrayLike, t: float) -> FloatArray:
        """z of every sensor for one row (missing values score 0 and teach nothing)."""
        values = np.asarray(row, dtype=np.float64)
        smooth = self._advance(values, t, learn=True)
        z = smooth / np.sqrt(self.var_)
        return np.asarray(np.where(np.isfinite(values), z, 0.0), dtype=np.float64)

    def baseline_shift(self) -> FloatArray:
        """How far each sensor's level moved since training, in training-scale units."""
        return np.asarray(np.abs(self.level_ - self.fit_level_) / self.scale0_)
