"""Causal windowed features of raw multivariate sensor rows, computed one row at a time.

Every feature is an exponentially weighted statistic whose smoothing factor comes from the
elapsed time between rows (``alpha = 1 - exp(-dt / tau)``), so a feature for row t only ever
uses rows <= t, the time constants are in seconds, and the same settings work at any sample
rate or with logging gaps. The batch transform is literally a loop over the streaming update,
so training and live scoring share one code path.

Per sensor, in this order:

* ``level``  — EWMA of the value over ``tau_level_s`` (smooths quantisation and noise);
* ``trend``  — fast level minus a slower EWMA over ``tau_trend_s`` (recent change);
* ``spread`` — EW standard deviation of the value around the fast level over ``tau_spread_s``.

Optionally (``relations=True``), per sensor pair: the EW correlation of the two sensors'
fluctuations around their slow level over ``tau_relation_s`` (cross-sensor coupling).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

PER_SENSOR = ("level", "trend", "spread")


class CausalFeatures:
    """Streaming feature extractor; ``transform`` on a block equals ``update`` row by row."""

    def __init__(
        self,
        tau_level_s: float = 10.0,
        tau_trend_s: float = 120.0,
        tau_spread_s: float = 30.0,
        tau_relation_s: float = 60.0,
        relations: bool = False,
    ) -> None:
        self.tau_level_s = tau_level_s
        self.tau_trend_s = tau_trend_s
        self.tau_spread_s = tau_spread_s
        self.tau_relation_s = tau_relation_s
        self.relations = relations
        self.n_sensors_: int | None = None
        self._last_t: float | None = None
        self._fast = np.zeros(0)
        self._slow = np.zeros(0)
        self._var = np.zeros(0)
        self._dev_var = np.zeros(0)
        self._cov = np.zeros(0)
        self._pairs: list[tuple[int, int]] = []

    # -- layout -------------------------------------------------------------------------------

    def feature_names(self, sensors: Sequence[str]) -> list[str]:
        """Names of the output columns for the given sensor names."""
        names = [f"{s}:{kind}" for s in sensors for kind in PER_SENSOR]
        if self.relations:
            names += [f"{sensors[i]}~{sensors[j]}:corr" for i, j in self._pair_list(len(sensors))]
        return names

    @staticmethod
    def _pair_list(n: int) -> list[tuple[int, int]]:
        return list(itertools.combinations(range(n), 2))

    # -- streaming ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all history (the next row starts fresh)."""
        self.n_sensors_ = None
        self._last_t = None

    def _start(self, row: FloatArray, t: float) -> None:
        n = row.shape[0]
        self.n_sensors_ = n
        self._pairs = self._pair_list(n) if self.relations else []
        start = np.where(np.isfinite(row), row, 0.0)
        self._fast = start.copy()
        self._slow = start.copy()
        self._var = np.zeros(n)
        self._dev_var = np.zeros(n)
        self._cov = np.zeros(len(self._pairs))
        self._last_t = t

    def update(self, row: FloatArray, t: float) -> FloatArray:
        """Consume one row (values per sensor, time in seconds) and return its feature vector.

        Non-finite values leave that sensor's statistics unchanged (a missing reading is not a
        zero reading). Time must not go backwards; a repeated timestamp adds no weight.
        """
        row = np.asarray(row, dtype=np.float64)
        if self.n_sensors_ is None or self._last_t is None:
            self._start(row, t)
        elif row.shape[0] != self.n_sensors_:
            raise ValueError(f"expected {self.n_sensors_} sensors, got {row.shape[0]}")
        else:
            dt = max(t - self._last_t, 0.0)
            self._last_t = max(t, self._last_t)
            self._step(row, dt)
        return self._vector()

    def update_levels(self, row: FloatArray, t: float) -> FloatArray:
        """Consume one float row like ``update`` and return the level of every sensor only.

        For a caller that reads no other column (the scorer's live path): the level and trend
        advance exactly as in ``update``, but the spread and the pair correlations are not
        advanced, so after this the stream's ``update`` would report a stale spread. The
        returned array is the extractor's own state: read it, do not change it.
        """
        if self.n_sensors_ is None or self._last_t is None:
            self._start(row, t)
            return self._fast
        if row.shape[0] != self.n_sensors_:
            raise ValueError(f"expected {self.n_sensors_} sensors, got {row.shape[0]}")
        dt = max(t - self._last_t, 0.0)
        self._last_t = max(t, self._last_t)
        a_level, a_trend = _alpha(dt, self.tau_level_s), _alpha(dt, self.tau_trend_s)
        # The usual row: every value finite (then so is their sum; a NaN or an infinity makes
        # it NaN or infinite), and the masks below would take every value.
        if math.isfinite(np.add.reduce(row)):
            self._fast = self._fast + a_level * (row - self._fast)
            self._slow = self._slow + a_trend * (row - self._slow)
            return self._fast
        ok = np.isfinite(row)
        x = np.where(ok, row, self._fast)
        self._fast = np.where(ok, self._fast + a_level * (x - self._fast), self._fast)
        self._slow = np.where(ok, self._slow + a_trend * (x - self._slow), self._slow)
        return self._fast

    def _step(self, row: FloatArray, dt: float) -> None:
        ok = np.isfinite(row)
        x = np.where(ok, row, self._fast)
        a_level = _alpha(dt, self.tau_level_s)
        a_trend = _alpha(dt, self.tau_trend_s)
        a_spread = _alpha(dt, self.tau_spread_s)
        # The spread is measured around the previous fast level so a step shows up as spread
        # for a moment and as a level change after.
        resid = x - self._fast
        self._var = np.where(ok, (1 - a_spread) * self._var + a_spread * resid**2, self._var)
        self._fast = np.where(ok, self._fast + a_level * (x - self._fast), self._fast)
        self._slow = np.where(ok, self._slow + a_trend * (x - self._slow), self._slow)
        if self._pairs:
            a_rel = _alpha(dt, self.tau_relation_s)
            dev = x - self._slow
            self._dev_var = (1 - a_rel) * self._dev_var + a_rel * dev**2
            i, j = np.array(self._pairs).T
            self._cov = (1 - a_rel) * self._cov + a_rel * dev[i] * dev[j]

    def _vector(self) -> FloatArray:
        per = np.stack([self._fast, self._fast - self._slow, np.sqrt(self._var)], axis=1)
        out = per.reshape(-1)
        if not self._pairs:
            return out
        i, j = np.array(self._pairs).T
        denom = np.sqrt(self._dev_var[i] * self._dev_var[j])
        # Constant sensors have no defined correlation; report 0 (no coupling) rather than NaN.
        corr = np.divide(self._cov, denom, out=np.zeros_like(self._cov), where=denom > 1e-12)
        return np.concatenate([out, corr])

    # -- batch --------------------------------------------------------------------------------

    def transform(self, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Features for a block of rows (continuing from the current state, if any)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != len(times_s):
            raise ValueError("values must be (n_rows, n_sensors) with one time per row")
        rows = [self.update(values[k], float(times_s[k])) for k in range(values.shape[0])]
        if not rows:
            return np.zeros((0, len(self.feature_names([""] * values.shape[1]))))
        return np.vstack(rows)


def _alpha(dt: float, tau: float) -> float:
    """EWMA weight of a new sample that arrives ``dt`` seconds after the previous one."""
    if tau <= 0:
        return 1.0
    return 1.0 - math.exp(-dt / tau)
