"""Alert → work-order policy: which alerts open a work order, its type, priority and assignee."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import User, WorkOrder
from api.settings import PolicySettings

RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
INSTRUMENT_KINDS = frozenset(
    {"instrument_stale", "instrument_stuck", "instrument_out_of_range", "instrument_spikes"}
)


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


# Orders a technician still has to finish: they count towards his load.
UNFINISHED = ("assigned", "in_progress", "on_hold", "reopened")


def pick_assignee(session: Session, policy: PolicySettings) -> User | None:
    """The active technician with the fewest unfinished orders (oldest account on a tie).

    None when the policy does not assign or no technician exists: the order stays open for
    someone to claim.
    """
    if policy.auto_assign == "none":
        return None
    load = (
        sa.select(sa.func.count(WorkOrder.id))
        .where(WorkOrder.assignee_id == User.id, WorkOrder.state.in_(UNFINISHED))
        .scalar_subquery()
    )
    return session.scalar(
        sa.select(User)
        .where(User.role == "technician", User.active.is_(True))
        .order_by(load, User.id)
        .limit(1)
    )
