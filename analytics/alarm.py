"""Alarm logic kept apart from scores: baseline threshold, on/off delays, hysteresis, health.

States (per asset)::

    NORMAL --score >= threshold--> PENDING --held for on_delay_s--> ALARM
    PENDING --score < threshold--> NORMAL
    ALARM --score < clear_ratio*threshold--> CLEARING --held for off_delay_s--> NORMAL
    CLEARING --score >= clear_ratio*threshold--> ALARM

The alarm is raised in ALARM and CLEARING. Delays are in seconds of the data's own time
column, so the same policy works at any sample rate. Defaults follow common alarm-management
practice (ISA-18.2 / EEMUA 191 suggest on/off delays of 5-60 s and a deadband between set and
clear levels) rather than anything fitted to a particular data set.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)


class AlarmState(StrEnum):
    """Where an asset's alarm state machine is."""

    NORMAL = "normal"
    PENDING = "pending"
    ALARM = "alarm"
    CLEARING = "clearing"


@dataclass(frozen=True)
class AlarmPolicy:
    """Settings of the threshold and state machine (all times in seconds)."""

    # Threshold = margin x this quantile of out-of-sample normal scores: the quantile sets the
    # tail of normal behaviour we accept, the margin leaves room for what 400 training rows
    # could not show.
    threshold_quantile: float = 0.99
    threshold_margin: float = 1.5
    # The condition must persist this long before the alarm is raised (filters blips).
    on_delay_s: float = 10.0
    # The score must stay below the clear level this long before the alarm is cleared
    # (avoids chattering while a fault is being worked on).
    off_delay_s: float = 60.0
    # Clear level as a fraction of the threshold (deadband / hysteresis).
    clear_ratio: float = 0.7
    # Above this fraction of the threshold the score counts as "elevated": the adaptive
    # baseline stops learning so a developing fault is not absorbed as drift.
    elevated_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_quantile < 1.0:
            raise ValueError("threshold_quantile must be in (0, 1)")
        if self.threshold_margin <= 0:
            raise ValueError("threshold_margin must be > 0")
        if self.on_delay_s < 0 or self.off_delay_s < 0:
            raise ValueError("on_delay_s and off_delay_s must be >= 0")
        if not 0.0 < self.clear_ratio <= 1.0:
            raise ValueError("clear_ratio must be in (0, 1]")
        if not 0.0 < self.elevated_ratio <= 1.0:
            raise ValueError("elevated_ratio must be in (0, 1]")


def baseline_threshold(scores: npt.ArrayLike, policy: AlarmPolicy) -> float:
    """Alarm threshold from a sample of normal (baseline) scores."""
    arr = np.asarray(scores, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError("no finite baseline scores to set a threshold from")
    level = float(np.quantile(arr, policy.threshold_quantile)) * policy.threshold_margin
    # A degenerate baseline (all scores 0) would alarm on any noise at all.
    return max(level, 1e-9)


def health_score(score: float, threshold: float) -> float:
    """0-100, 100 = perfectly normal, 50 = at the threshold, halving with each threshold step."""
    if not math.isfinite(score):
        return 0.0
    return float(100.0 * 2.0 ** (-max(score, 0.0) / threshold))


class AlarmStateMachine:
    """One asset's alarm state, advanced one score at a time in time order."""

    def __init__(self, threshold: float, policy: AlarmPolicy) -> None:
        self.threshold = threshold
        self.policy = policy
        self.state = AlarmState.NORMAL
        self._since: float | None = None

    @property
    def alarm(self) -> bool:
        """True while an alarm is raised (including its off-delay)."""
        return self.state in (AlarmState.ALARM, AlarmState.CLEARING)

    def elevated(self, score: float) -> bool:
        """Whether ``score`` is high enough to stop baseline adaptation."""
        return (
            score >= self.policy.elevated_ratio * self.threshold or self.state != AlarmState.NORMAL
        )

    def update(self, score: float, t: float) -> AlarmState:
        """Advance with the score of the row at time ``t`` (seconds) and return the new state."""
        p = self.policy
        high = not score < self.threshold  # NaN counts as high: a broken model must not hide
        low = score < p.clear_ratio * self.threshold
        if self.state == AlarmState.NORMAL and high:
            self._enter(AlarmState.PENDING, t)
        elif self.state == AlarmState.PENDING and not high:
            self._enter(AlarmState.NORMAL, t)
        elif self.state == AlarmState.ALARM and low:
            self._enter(AlarmState.CLEARING, t)
        elif self.state == AlarmState.CLEARING and not low:
            self._enter(AlarmState.ALARM, t)
        # Delays are checked after the transition so a zero delay acts on the same row.
        if self.state == AlarmState.PENDING and self._held(t) >= p.on_delay_s:
            self._enter(AlarmState.ALARM, t)
            logger.debug("alarm raised at t=%s score=%.3g", t, score)
        elif self.state == AlarmState.CLEARING and self._held(t) >= p.off_delay_s:
            self._enter(AlarmState.NORMAL, t)
            logger.debug("alarm cleared at t=%s", t)
        return self.state

    def _enter(self, state: AlarmState, t: float) -> None:
        self.state = state
        self._since = t

    def _held(self, t: float) -> float:
        return t - self._since if self._since is not None else 0.0
