"""Machine running state: is the asset stopped (an operating state, not a failing machine)?

A stop (speed, current, power, flow, vibration at about zero while the machine is not driven)
moves every level far from its running baseline, so a detector that does not know about it
calls a healthy machine's stop, and the cool-down and warm-up around it, an anomaly.

The asset's *running indicators* are the sensors whose names say they measure the machine's
motion or drive (speed, current, power, flow, vibration, throughput...); of those, the ones
whose training running level (a high quantile of the training rows, so office-hours air
handlers that are off most of the week still have one) is clearly above zero are used. The
asset is stopped when *every* indicator is below ``off_fraction`` of its running level at the
same row: a fault slows or starves one part of a machine, an operator or a schedule stops all
of it. An asset without indicators is never judged stopped.

After a stop the machine restarts cold: speeds ramp, temperatures climb back over their own
time constants. ``settling`` is true after it runs again until the scorer reports it ``calm``
(its levels back within their normal range) once ``restart_factor`` times the stop's length
has passed (at least ``min_settle_s``), and never longer than ``max_settle_s``: the scorer does
not alarm then and lets its adaptive baselines follow the warm-up.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Name fragments of sensors that fall to about zero when a machine stops. Temperatures,
# pressures of a pressurised network, voltages and set points do not, nor do averaged figures
# such as a compressor's loaded duty (it decays over many minutes), so they are not used.
INDICATOR = re.compile(r"speed|rpm|current|power|flow|vibration|throughput", re.I)


class RunningState:
    """Streaming stopped/running detector of one asset; ``fit`` on training rows."""

    def __init__(
        self,
        *,
        off_fraction: float = 0.1,
        running_quantile: float = 0.9,
        restart_factor: float = 1.0,
        min_settle_s: float = 60.0,
        max_settle_s: float = 4 * 3600.0,
    ) -> None:
        self.off_fraction = off_fraction
        self.running_quantile = running_quantile
        self.restart_factor = restart_factor
        self.min_settle_s = min_settle_s
        self.max_settle_s = max_settle_s

    def fit(self, values: npt.ArrayLike, sensors: Sequence[str]) -> Self:
        """Pick the running indicators and their off levels from training rows."""
        vals = np.asarray(values, dtype=np.float64)
        cols = [j for j, name in enumerate(sensors) if INDICATOR.search(name)]
        self.columns_ = np.asarray(cols, dtype=np.intp)
        running = np.zeros(len(cols))
        if cols:
            sub = vals[:, cols]
            seen = np.isfinite(sub).any(axis=0)
            running[seen] = np.nanquantile(sub[:, seen], self.running_quantile, axis=0)
        keep = running > 0
        self.columns_ = self.columns_[keep]
        self.off_level_ = np.asarray(self.off_fraction * running[keep], dtype=np.float64)
        self.indicators_ = tuple(sensors[j] for j in self.columns_)
        self.stopped = False
        self._stopped_at: float | None = None
        self._calm_after = -math.inf
        self._settle_until = -math.inf
        return self

    def update(self, row: npt.ArrayLike, t: float) -> bool:
        """Feed one row; whether the asset is stopped now (missing values do not decide)."""
        if len(self.columns_) == 0:
            return False
        vals = np.asarray(row, dtype=np.float64)[self.columns_]
        seen = np.isfinite(vals)
        stopped = bool(seen.any() and np.all(vals[seen] < self.off_level_[seen]))
        if stopped and not self.stopped:
            self._stopped_at = t
        elif not stopped and self.stopped and self._stopped_at is not None:
            length = self.restart_factor * (t - self._stopped_at)
            self._calm_after = t + min(max(length, self.min_settle_s), self.max_settle_s)
            self._settle_until = t + self.max_settle_s
        self.stopped = stopped
        return stopped

    def settling(self, t: float) -> bool:
        """Whether the asset is still warming up after a stop at time t."""
        return not self.stopped and t < self._settle_until

    def calm(self, t: float) -> None:
        """The scorer's levels are back in their normal range: the warm-up may end."""
        if t >= self._calm_after:
            self._settle_until = -math.inf
