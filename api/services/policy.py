"""Alert → work-order policy: which alerts open a work order, of what type and priority."""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import PolicySettings

RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
INSTRUMENT_KINDS = frozenset({"instrument_stale", "instrument_stuck", "instrument_out_of_range"})


@dataclass(frozen=True, slots=True)
class Decision:
    """Open a work order of this type and priority (1 = most urgent)."""

    work_type: str
    priority: int


def decide(
    policy: PolicySettings, *, kind: str, severity: str, criticality: str
) -> Decision | None:
    """The work order an alert deserves, or None when it stays an alert only.

    Score = severity rank + criticality rank (2..8). At or above `min_score` a work order is
    opened; the higher the score, the more urgent. Instrument problems go to instrument
    technicians (calibration, wiring), not to the machine's mechanics.
    """
    score = RANK.get(severity, 2) + RANK.get(criticality, 2)
    if score < policy.min_score:
        return None
    priority = 1 if score >= 8 else 2 if score >= 7 else 3 if score >= 5 else 4
    work_type = "instrument" if kind in INSTRUMENT_KINDS else "corrective"
    return Decision(work_type, priority)
