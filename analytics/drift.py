"""Slow, gated adaptive baseline of the feature vector (causal handling of slow drift).

Sensors drift over hours (ambient temperature, fluid heating, slow regime changes). The
baseline is Brown's double exponential smoothing (``2*E1 - E2`` of two chained EWMAs with the
same time constant): unlike a plain EWMA it has no steady lag behind a steady ramp, so slow
linear drift leaves no residual, while anything faster than ``tau_s`` stands out. It stops
learning whenever the score is elevated or an alarm is active (optionally leaking at a much
slower rate, ``frozen_tau_factor``), so a fault that develops faster than the baseline adapts
keeps pushing the score up instead of being learned as the new normal. Faults slower than the
baseline are not hidden silently either: the total shift since training is reported
(``offset``), for a "drifted from commissioning" notice.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class AdaptiveBaseline:
    """Gated double-EWMA baseline of feature vectors; time constant ``tau_s`` in seconds.

    ``tau_s = inf`` (or <= 0) never adapts: the baseline stays where ``start`` put it.
    """

    def __init__(
        self, tau_s: float = 600.0, frozen_tau_factor: float = math.inf, lag_free: bool = True
    ) -> None:
        self.tau_s = tau_s
        self.frozen_tau_factor = frozen_tau_factor
        self.lag_free = lag_free
        self.reference_ = np.zeros(0)
        self._e1 = np.zeros(0)
        self._e2 = np.zeros(0)
        self._last_t: float | None = None

    def start(self, reference: FloatArray, t: float | None = None) -> None:
        """Begin at ``reference`` (the first or typical feature vector)."""
        self.reference_ = np.asarray(reference, dtype=np.float64).copy()
        self._e1 = self.reference_.copy()
        self._e2 = self.reference_.copy()
        self._last_t = t

    @property
    def center(self) -> FloatArray:
        """Current baseline estimate of the feature vector."""
        if self.lag_free:
            return np.asarray(2.0 * self._e1 - self._e2, dtype=np.float64)
        return self._e1.copy()

    @property
    def offset(self) -> FloatArray:
        """How far the baseline has moved since ``start`` (feature units)."""
        return self.center - self.reference_

    def update(self, features: FloatArray, t: float, frozen: bool | npt.NDArray[np.bool_]) -> None:
        """Learn from one feature vector except where ``frozen`` (one flag or one per feature)."""
        if self._last_t is None:
            self._last_t = t
            return
        dt = max(t - self._last_t, 0.0)
        self._last_t = max(t, self._last_t)
        if self.tau_s <= 0 or math.isinf(self.tau_s):
            return
        ok = np.isfinite(features)
        # A frozen feature leaks towards the data frozen_tau_factor times more slowly (never,
        # by default), so a fault cannot be learned as normal while it is being reported.
        slow = 0.0 if math.isinf(self.frozen_tau_factor) else 1.0 / self.frozen_tau_factor
        rate = np.where(np.asarray(frozen, dtype=bool), slow, 1.0)
        alpha = 1.0 - np.exp(-dt * rate / self.tau_s)
        self._e1 = np.where(ok, self._e1 + alpha * (features - self._e1), self._e1)
        self._e2 = np.where(ok, self._e2 + alpha * (self._e1 - self._e2), self._e2)
