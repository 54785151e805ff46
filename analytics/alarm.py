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

Severity-weighted off-delay (optional, ``off_evidence_power`` > 0): the alarm clears when the
*evidence* accumulated since entering CLEARING reaches ``off_delay_s``, each second counting
``(clear level / score) ** off_evidence_power`` seconds. A score just under the clear level, the
one that could chatter back over it, holds the full off-delay; a score that has fallen far below
it (the condition is gone) clears sooner, and a score of 0 at the next sample. The weight is
never below 1, so the off-delay only shortens, and at a sampling interval at least as long as
the off-delay nothing changes. The on-delay is deliberately not weighted: a smoothed score's
first seconds above the threshold look the same for a developing fault and for a noise burst
(docs/analytics.md, session 6).
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
    # Severity weighting of the off-delay (0 = plain time; see the module docstring).
    off_evidence_power: float = 0.0
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
        if self.off_evidence_power < 0:
            raise ValueError("off_evidence_power must be >= 0")
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


# Most seconds one second of weighted off-delay can count for (keeps the arithmetic finite for
# a score of 0; far beyond any delay).
MAX_EVIDENCE_WEIGHT = 1e6


class AlarmStateMachine:
    """One asset's alarm state, advanced one score at a time in time order."""

    def __init__(self, threshold: float, policy: AlarmPolicy) -> None:
        self.threshold = threshold
        self.policy = policy
        self.state = AlarmState.NORMAL
        # Seconds held in the current state (PENDING / CLEARING; weighted while CLEARING) and
        # the last row's time.
        self._held_s = 0.0
        self._last_t: float | None = None

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
        dt = 0.0 if self._last_t is None else max(t - self._last_t, 0.0)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        high = not score < self.threshold  # NaN counts as high: a broken model must not hide
        low = score < p.clear_ratio * self.threshold
        before = self.state
        if self.state == AlarmState.NORMAL and high:
            self._enter(AlarmState.PENDING)
        elif self.state == AlarmState.PENDING and not high:
            self._enter(AlarmState.NORMAL)
        elif self.state == AlarmState.ALARM and low:
            self._enter(AlarmState.CLEARING)
        elif self.state == AlarmState.CLEARING and not low:
            self._enter(AlarmState.ALARM)
        if self.state == before:
            self._held_s += dt * self._weight(score)
        # Delays are checked after the transition so a zero delay acts on the same row.
        if self.state == AlarmState.PENDING and self._held_s >= p.on_delay_s:
            self._enter(AlarmState.ALARM)
            logger.debug("alarm raised at t=%s score=%.3g", t, score)
        elif self.state == AlarmState.CLEARING and self._held_s >= p.off_delay_s:
            self._enter(AlarmState.NORMAL)
            logger.debug("alarm cleared at t=%s", t)
        return self.state

    def _enter(self, state: AlarmState) -> None:
        self.state = state
        self._held_s = 0.0

    def _weight(self, score: float) -> float:
        """Seconds of delay that one second at ``score`` counts for in the current state."""
        p = self.policy
        if self.state != AlarmState.CLEARING or p.off_evidence_power <= 0:
            return 1.0
        ratio = score / self.threshold
        below = p.clear_ratio / ratio if ratio > 0 else math.inf
        return _capped_power(below, p.off_evidence_power)


def _capped_power(base: float, power: float) -> float:
    """``base ** power`` clipped to [1, MAX_EVIDENCE_WEIGHT] without overflowing."""
    if not base > 1.0:
        return 1.0
    return math.exp(min(power * math.log(base), math.log(MAX_EVIDENCE_WEIGHT)))
