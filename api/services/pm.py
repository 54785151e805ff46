"""Preventive maintenance: meter readings, when a plan falls due on an asset, the one work order
it generates, and what its completion means for the next cycle.

A plan targets one asset or every asset of a type in its site; each (plan, asset) pair has a
``PmSchedule`` row with the next calendar due date and the next meter value. The background
sweep generates a preventive work order for each pair that is due (``lead_days`` / ``meter_lead``
ahead), one at a time: the order's ``open_key`` is ``pm:<plan>:<asset>``, unique while the order
is unfinished, so concurrent sweeps and API replicas cannot make a second one (the loser's
insert fails and its transaction is replayed, and then sees the winner's order). Completing
the order starts the next cycle from the completion (``anchor`` "completion") or from the
schedule's own next date (``anchor`` "fixed"); cancelling it skips the cycle.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import ConflictError, InvalidError
from api.models import Asset, AssetStatus, Meter, MeterReading, PmPlan, PmSchedule, WorkOrder
from api.services import audit, events
from api.services.asset_status import POOR_HEALTH
from api.services.policy import pick_assignee
from api.settings import PolicySettings

SYSTEM = "system:pm"


def add_interval(at: datetime, every: int, unit: str) -> datetime:
    """``at`` plus ``every`` days, weeks or calendar months (the 31st becomes the month's last)."""
    if unit == "days":
        return at + timedelta(days=every)
    if unit == "weeks":
        return at + timedelta(weeks=every)
    months = at.month - 1 + every
    year, month = at.year + months // 12, months % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def open_key(plan_id: int, asset_id: int) -> str:
    """The uniqueness key of a plan's unfinished order on an asset."""
    return f"pm:{plan_id}:{asset_id}"


# -- meters ---------------------------------------------------------------------------------


def get_meter(session: Session, asset_id: int, name: str, *, lock: bool = False) -> Meter | None:
    """The asset's meter of this name, if it has one."""
    stmt = sa.select(Meter).where(Meter.asset_id == asset_id, Meter.name == name)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def record_reading(
    session: Session,
    asset_id: int,
    name: str,
    *,
    value: float,
    at: datetime,
    reset: bool,
    unit: str,
    source: str,
) -> tuple[Meter, MeterReading | None]:
    """Add a reading (creating the meter at its first); (meter, reading or None if a repeat).

    A meter only grows: a value below the last one is refused unless ``reset`` says the meter
    restarted (replaced, or reset to zero), and a reading older than the last one is refused.
    The same value at the same time again (a sender retrying) is accepted and adds nothing.
    """
    meter = get_meter(session, asset_id, name, lock=True)
    if meter is None:
        meter = Meter(asset_id=asset_id, name=name, unit=unit, value=0.0, total=0.0)
        session.add(meter)
        # A concurrent first reading inserts the same (asset, name): the caller replays.
        session.flush()
        reset = True  # the first reading starts the count at its value
    elif meter.read_at is not None:
        if at == meter.read_at and value == meter.value:
            return meter, None
        if at <= meter.read_at:
            raise InvalidError(
                f"meter {name!r} was last read at {meter.read_at.isoformat()}: "
                "readings must be newer",
                where="at",
            )
        if value < meter.value and not reset:
            raise InvalidError(
                f"meter {name!r} read {meter.value:g} last; a lower value needs 'reset': true",
                where="value",
            )
    gained = value if reset else value - meter.value
    meter.total += gained
    meter.value, meter.read_at = value, at
    if unit and not meter.unit:
        meter.unit = unit
    reading = MeterReading(
        meter_id=meter.id, at=at, value=value, total=meter.total, reset=reset, source=source
    )
    session.add(reading)
    return meter, reading


def meter_total(session: Session, asset_id: int, name: str | None) -> float | None:
    """The lifetime total of an asset's meter (None if it has none yet)."""
    if name is None:
        return None
    meter = get_meter(session, asset_id, name)
    return None if meter is None else meter.total


# -- plans and schedules ----------------------------------------------------------------------


def targets(session: Session, plan: PmPlan) -> list[Asset]:
    """The assets a plan applies to now (a type plan covers assets added later too)."""
    if plan.asset_id is not None:
        asset = session.get(Asset, plan.asset_id)
        return [] if asset is None else [asset]
    stmt = sa.select(Asset).where(
        Asset.site_id == plan.site_id, Asset.asset_type == plan.asset_type
    )
    return list(session.scalars(stmt.order_by(Asset.id)))


def check_targets(session: Session, plan: PmPlan) -> None:
    """InvalidError unless the plan's asset belongs to its site."""
    if plan.asset_id is not None:
        asset = session.get(Asset, plan.asset_id)
        if asset is None or asset.site_id != plan.site_id:
            raise InvalidError(
                f"asset {plan.asset_id} is not an asset of site {plan.site_id}", where="asset_id"
            )


def schedule_for(session: Session, plan: PmPlan, asset: Asset, *, lock: bool = False) -> PmSchedule:
    """The (plan, asset) schedule, made when the plan is created (or, for an asset of the
    plan's type added later, at the first sweep that sees it): first due at ``starts_at``,
    and one meter interval on from the meter's total then (0 if it has no reading yet)."""
    stmt = sa.select(PmSchedule).where(
        PmSchedule.plan_id == plan.id, PmSchedule.asset_id == asset.id
    )
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is not None:
        return found
    base = meter_total(session, asset.id, plan.meter_name) or 0.0
    schedule = PmSchedule(
        plan_id=plan.id,
        asset_id=asset.id,
        next_due_at=plan.starts_at if plan.every else None,
        next_due_meter=base + plan.meter_every if plan.meter_every else None,
        updated_at=plan.created_at,
    )
    session.add(schedule)
    session.flush()  # a concurrent sweep inserting the same pair fails here: replayed
    return schedule


def condition_factor(
    status: AssetStatus | None, policy: PolicySettings, now: datetime
) -> tuple[float, str]:
    """How much of its meter interval a plan waits on this asset, and why (1.0, "" normally).

    Health that has stayed poor (below 50) for ``policy.pm_poor_hours`` brings meter-based
    plans forward in proportion: health h gives ``max(h / 50, pm_min_factor)`` of the
    interval (a machine at health 30 is greased at 60 % of its hours).
    """
    if status is None or status.poor_since is None or status.health is None:
        return 1.0, ""
    lasted = now - status.poor_since
    if lasted < timedelta(hours=policy.pm_poor_hours):
        return 1.0, ""
    factor = max(status.health / POOR_HEALTH, policy.pm_min_factor)
    hours = lasted.total_seconds() / 3600
    return factor, f"brought forward to {factor:.0%}: health {status.health:.0f} for {hours:.0f} h"


def why_due(
    plan: PmPlan,
    schedule: PmSchedule,
    meter_now: float | None,
    now: datetime,
    condition: tuple[float, str] = (1.0, ""),
) -> str | None:
    """Why the plan is due on the asset at ``now`` (calendar or meter), or None.

    ``condition`` (``condition_factor``) shortens the meter interval of an asset in poor health.
    """
    if schedule.next_due_at is not None and now >= schedule.next_due_at - timedelta(
        days=plan.lead_days
    ):
        return f"due on {schedule.next_due_at:%Y-%m-%d} (every {plan.every} {plan.unit})"
    if schedule.next_due_meter is None or meter_now is None or plan.meter_every is None:
        return None
    factor, why = condition
    due = schedule.next_due_meter - plan.meter_every * (1.0 - factor)
    if meter_now >= due - plan.meter_lead:
        text = f"due at {due:g} {plan.meter_name} (every {plan.meter_every:g}; now {meter_now:g}"
        return text + (f"; {why})" if why else ")")
    return None


def merged_order(
    session: Session, plan: PmPlan, asset: Asset, policy: PolicySettings, now: datetime
) -> WorkOrder | None:
    """A corrective order on the asset for the plan's failure mode, completed as fixed within
    ``policy.pm_merge_days``: it did this cycle's work (None if there is none)."""
    if plan.failure_mode is None or policy.pm_merge_days <= 0:
        return None
    return session.scalar(
        sa.select(WorkOrder)
        .where(
            WorkOrder.asset_id == asset.id,
            WorkOrder.failure_mode == plan.failure_mode,
            WorkOrder.work_type != "preventive",
            WorkOrder.resolution == "fixed",
            WorkOrder.completed_at >= now - timedelta(days=policy.pm_merge_days),
        )
        .order_by(WorkOrder.completed_at.desc())
        .limit(1)
    )


def generate_due(session: Session, policy: PolicySettings, now: datetime) -> list[int]:
    """One preventive work order for every (plan, asset) that is due and has none unfinished."""
    made = []
    for plan in session.scalars(sa.select(PmPlan).where(PmPlan.active).order_by(PmPlan.id)):
        for asset in targets(session, plan):
            # The schedule row is locked first: a concurrent sweep (another replica) waits here
            # and then sees this one's order or its merge, never half of it.
            schedule = schedule_for(session, plan, asset, lock=True)
            key = open_key(plan.id, asset.id)
            if session.scalar(sa.select(WorkOrder.id).where(WorkOrder.open_key == key)):
                continue
            status = session.scalar(sa.select(AssetStatus).where(AssetStatus.asset_id == asset.id))
            condition = condition_factor(status, policy, now)
            meter_now = meter_total(session, asset.id, plan.meter_name)
            reason = why_due(plan, schedule, meter_now, now, condition)
            if reason is None:
                continue
            merged = merged_order(session, plan, asset, policy, now)
            if merged is not None:
                _merge(session, plan, schedule, merged, reason=reason, now=now)
                continue
            order = _make_order(
                session, plan, asset, schedule, reason=reason, policy=policy, now=now
            )
            made.append(order.id)
    return made


def _make_order(
    session: Session,
    plan: PmPlan,
    asset: Asset,
    schedule: PmSchedule,
    *,
    reason: str,
    policy: PolicySettings,
    now: datetime,
) -> WorkOrder:
    due = schedule.next_due_at if schedule.next_due_at is not None else now
    estimate = f" Estimated labour: {plan.estimated_minutes} min." if plan.estimated_minutes else ""
    order = WorkOrder(
        site_id=asset.site_id,
        asset_id=asset.id,
        title=f"{plan.title} ({asset.code})"[:200],
        description=f"{plan.description}\n\nPreventive maintenance: {reason}.{estimate}".strip(),
        work_type="preventive",
        open_key=open_key(plan.id, asset.id),
        state="open",
        priority=plan.priority,
        due_at=max(due, now),
        pm_plan_id=plan.id,
        checklist=list(plan.checklist),
        created_by=SYSTEM,
        created_at=now,
        updated_at=now,
    )
    assignee = pick_assignee(session, policy)
    if assignee is not None:
        order.state, order.assignee_id = "assigned", assignee.id
    session.add(order)
    session.flush()  # a concurrent sweep's order with the same open_key fails here: replayed
    audit.record(session, SYSTEM, "create", "work_order", order.id, {"pm_plan": plan.id})
    events.work_order_event(session, order, "create")
    return order


def _merge(
    session: Session,
    plan: PmPlan,
    schedule: PmSchedule,
    order: WorkOrder,
    *,
    reason: str,
    now: datetime,
) -> None:
    """Count a just-completed corrective order as the plan's work this cycle."""
    assert order.completed_at is not None  # merged_order finds completed orders only
    _advance(session, plan, schedule, order.asset_id, now=order.completed_at, outcome="merged")
    order.notes = [
        *order.notes,
        {
            "at": now.isoformat(),
            "author": SYSTEM,
            "text": f"also counts as preventive maintenance '{plan.title}' ({reason})",
        },
    ]
    audit.record(
        session, SYSTEM, "merge", "pm_plan", plan.id, {"work_order": order.id, "reason": reason}
    )


def check_required_steps(order: WorkOrder) -> None:
    """ConflictError (409) while a required checklist step of the order is not done."""
    missing = [
        str(step.get("item"))
        for step in order.checklist
        if step.get("required") and not step.get("done")
    ]
    if missing:
        raise ConflictError(f"required checklist steps are not done: {'; '.join(missing)[:500]}")


def close_cycle(session: Session, order: WorkOrder, now: datetime, *, skipped: bool) -> None:
    """A plan's order completed (or cancelled = skipped): the schedule moves to the next cycle."""
    if order.pm_plan_id is None:
        return
    plan = session.get(PmPlan, order.pm_plan_id)
    schedule = session.scalar(
        sa.select(PmSchedule)
        .where(PmSchedule.plan_id == order.pm_plan_id, PmSchedule.asset_id == order.asset_id)
        .with_for_update()
    )
    if plan is None or schedule is None:
        return
    late = order.due_at is not None and now > order.due_at
    outcome = "skipped" if skipped else "late" if late else "done"
    _advance(session, plan, schedule, order.asset_id, now=now, outcome=outcome)


def _advance(
    session: Session,
    plan: PmPlan,
    schedule: PmSchedule,
    asset_id: int,
    *,
    now: datetime,
    outcome: str,
) -> None:
    """Start the schedule's next cycle from a completion (or skip, or merge) at ``now``."""
    schedule.last_outcome = outcome
    schedule.last_done_at = now
    if plan.every and plan.unit:
        if plan.anchor == "fixed":
            # The fixed schedule's next date after the one this order was for (and after now:
            # a cycle done very late does not leave a backlog of dates already past).
            due = add_interval(schedule.next_due_at or plan.starts_at, plan.every, plan.unit)
            while due <= now:
                due = add_interval(due, plan.every, plan.unit)
            schedule.next_due_at = due
        else:
            schedule.next_due_at = add_interval(now, plan.every, plan.unit)
    if plan.meter_every:
        total = meter_total(session, asset_id, plan.meter_name) or 0.0
        schedule.next_due_meter = total + plan.meter_every
    schedule.updated_at = now
