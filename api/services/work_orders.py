"""Work-order rules: the state machine, one open order per asset and failure mode, evidence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import ConflictError, ForbiddenError, IllegalTransitionError, InvalidError
from api.models import Alert, Asset, User, WorkOrder, WorkOrderEvidence
from api.schemas.work_orders import WorkOrderTransition, WorkOrderUpdate
from api.security import Principal
from api.services import audit, events, pm
from api.services.policy import decide, pick_assignee
from api.settings import PolicySettings

# open → assigned → in_progress ⇄ on_hold → completed → verified | reopened,
# and cancelled from anything not yet completed. `assigned → open` un-assigns.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"assigned", "cancelled"}),
    "assigned": frozenset({"in_progress", "open", "cancelled"}),
    "in_progress": frozenset({"on_hold", "completed", "cancelled"}),
    "on_hold": frozenset({"in_progress", "cancelled"}),
    "completed": frozenset({"verified", "reopened"}),
    "reopened": frozenset({"assigned", "in_progress", "cancelled"}),
    "verified": frozenset(),
    "cancelled": frozenset(),
}
# Technicians do the work; approving, cancelling and judging the result is for facilities.
TECHNICIAN_TARGETS = frozenset({"assigned", "in_progress", "on_hold", "completed"})
# How much history a chart link shows before an alert's onset, and after it.
CHART_BEFORE = timedelta(hours=6)
CHART_AFTER = timedelta(hours=1)


def open_key(asset_id: int, failure_mode: str | None) -> str | None:
    """The uniqueness key of an open work order (None for orders without a failure mode)."""
    return f"{asset_id}:{failure_mode}" if failure_mode else None


def visible_to(principal: Principal) -> sa.ColumnElement[bool]:
    """Technicians see their own orders and unassigned ones they may claim; others see all."""
    if principal.role != "technician":
        return sa.true()
    return sa.or_(WorkOrder.assignee_id == principal.user_id, WorkOrder.assignee_id.is_(None))


def check_can_change(principal: Principal, order: WorkOrder) -> None:
    """Technicians change only their own orders (claiming an unassigned one is a transition)."""
    if principal.role == "technician" and order.assignee_id != principal.user_id:
        raise ForbiddenError("technicians may only change work orders assigned to them")


def find_open(session: Session, asset_id: int, failure_mode: str | None) -> WorkOrder | None:
    """The open order for this asset and failure mode, locked for update."""
    key = open_key(asset_id, failure_mode)
    if key is None:
        return None
    return session.scalar(sa.select(WorkOrder).where(WorkOrder.open_key == key).with_for_update())


def chart_url(alert: Alert, at: datetime) -> str:
    """A link to the readings around an alert occurrence, with its leading sensors."""
    sensors = ",".join(str(c.get("sensor")) for c in alert.contributors[:5] if c.get("sensor"))
    start = (at - CHART_BEFORE).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (at + CHART_AFTER).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"/api/v1/assets/{alert.asset_id}/readings?start={start}&end={end}"
    return url + (f"&sensors={sensors}" if sensors else "")


def add_evidence(session: Session, order: WorkOrder, alert: Alert, at: datetime) -> None:
    """Attach an alert occurrence to an order."""
    session.add(
        WorkOrderEvidence(
            work_order_id=order.id,
            alert_id=alert.id,
            at=at,
            severity=alert.severity,
            score=alert.score,
            contributors=list(alert.contributors),
            chart_url=chart_url(alert, at),
        )
    )


def for_alert(
    session: Session,
    alert: Alert,
    asset: Asset,
    policy: PolicySettings,
    *,
    new_occurrence: bool,
    now: datetime,
    actor: str,
) -> WorkOrder | None:
    """Attach an active alert to the open order of its asset and failure mode, or open one.

    A completed order awaiting verification whose anomaly returns is reopened: the repair did
    not hold. Returns the order, or None when the policy leaves the alert without one.
    """
    order = find_open(session, asset.id, alert.failure_mode)
    if order is not None:
        if order.state == "completed":
            _set_state(order, "reopened", now)
            order.resolution = None
            order.notes = [
                *order.notes,
                _note(actor, now, "anomaly returned before verification; reopened"),
            ]
            audit.record(session, actor, "reopen", "work_order", order.id, {"alert": alert.id})
            events.work_order_event(session, order, "reopen")
        if new_occurrence or alert.work_order_id != order.id:
            add_evidence(session, order, alert, alert.last_detected_at)
        alert.work_order_id = order.id
        return order
    decision = decide(
        policy, kind=alert.kind, severity=alert.severity, criticality=asset.criticality
    )
    if decision is None:
        return None
    order = WorkOrder(
        site_id=asset.site_id,
        asset_id=asset.id,
        title=f"{alert.kind.replace('_', ' ')}: {alert.failure_mode} on {asset.code}"[:200],
        description=alert.message,
        work_type=decision.work_type,
        failure_mode=alert.failure_mode,
        open_key=open_key(asset.id, alert.failure_mode),
        state="open",
        priority=decision.priority,
        due_at=now + timedelta(hours=policy.due_hours.get(decision.priority, 72)),
        alert_id=alert.id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    assignee = pick_assignee(session, policy)
    if assignee is not None:
        order.state, order.assignee_id = "assigned", assignee.id
    session.add(order)
    # A concurrent insert of the same open_key fails here; the caller replays the transaction.
    session.flush()
    add_evidence(session, order, alert, alert.last_detected_at)
    alert.work_order_id = order.id
    audit.record(session, actor, "create", "work_order", order.id, {"from_alert": alert.id})
    if assignee is not None:
        detail = {"assignee": assignee.username, "by": "policy"}
        audit.record(session, actor, "assign", "work_order", order.id, detail)
    events.work_order_event(session, order, "create")
    return order


def _note(author: str, at: datetime, text: str) -> dict[str, Any]:
    return {"at": at.isoformat(), "author": author, "text": text}


def _set_state(order: WorkOrder, to: str, now: datetime) -> None:
    order.state = to
    order.updated_at = now
    if to in ("verified", "cancelled"):
        order.open_key = None


def transition(  # noqa: PLR0912 (one branch per target state reads like the diagram)
    session: Session,
    order: WorkOrder,
    body: WorkOrderTransition,
    *,
    principal: Principal,
    policy: PolicySettings,
    now: datetime,
) -> None:
    """Apply a state change, or raise IllegalTransitionError / ForbiddenError."""
    allowed = TRANSITIONS[order.state]
    if body.to not in allowed:
        raise IllegalTransitionError(
            f"a work order cannot go from {order.state!r} to {body.to!r}",
            state=order.state,
            to=body.to,
            allowed=sorted(allowed),
        )
    if principal.role == "technician":
        if body.to not in TECHNICIAN_TARGETS:
            raise ForbiddenError(f"technicians may not move a work order to {body.to!r}")
        claiming = body.to == "assigned" and order.assignee_id is None
        if not claiming:
            check_can_change(principal, order)
        if body.assignee_id not in (None, principal.user_id):
            raise ForbiddenError("technicians may only assign work orders to themselves")
    before = order.state
    if body.to == "assigned":
        assignee = body.assignee_id or principal.user_id
        if assignee is None:
            raise InvalidError("assigning needs 'assignee_id'", where="assignee_id")
        user = session.get(User, assignee)
        if user is None or not user.active:
            raise InvalidError(
                f"user {assignee} does not exist or is inactive", where="assignee_id"
            )
        order.assignee_id = assignee
    elif body.to == "open":
        order.assignee_id = None
    elif body.to == "in_progress" and order.started_at is None:
        order.started_at = now
    elif body.to == "completed":
        pm.check_required_steps(order)
        _complete(order, body, policy, now)
    elif body.to == "verified":
        order.verified_at = now
    elif body.to == "reopened":
        order.verify_due_at = None
        order.resolution = None
        if order.open_key is None and order.failure_mode:
            # A 'no fault found' order gave up its key; reopening takes it back (409 if taken).
            key = open_key(order.asset_id, order.failure_mode)
            if session.scalar(sa.select(WorkOrder.id).where(WorkOrder.open_key == key)):
                raise ConflictError("another order is open for this asset and failure mode")
            order.open_key = key
    _set_state(order, body.to, now)
    if body.to in ("completed", "cancelled"):
        pm.close_cycle(session, order, now, skipped=body.to == "cancelled")
    if body.reason:
        order.notes = [*order.notes, _note(principal.actor, now, body.reason)]
    audit.record(
        session,
        principal.actor,
        "transition",
        "work_order",
        order.id,
        {"from": before, "to": body.to, "reason": body.reason},
    )
    events.work_order_event(session, order, "transition")


def _complete(
    order: WorkOrder, body: WorkOrderTransition, policy: PolicySettings, now: datetime
) -> None:
    order.completed_at = now
    order.resolution = body.resolution
    order.failure_code = body.failure_code
    order.cause = body.cause
    order.remedy = body.remedy
    if body.resolution == "fixed" and order.failure_mode:
        # Verified later if the asset's alert stays normal this long; reopened if it returns.
        order.verify_due_at = now + timedelta(seconds=policy.verify_after_s)
    else:
        # No fault found (or no failure mode to watch): nothing to verify; the key is free.
        order.open_key = None


def update(
    session: Session,
    order: WorkOrder,
    body: WorkOrderUpdate,
    principal: Principal,
    now: datetime,
) -> None:
    """Change an order's fields (not its state)."""
    check_can_change(principal, order)
    if order.state in ("verified", "cancelled"):
        raise ConflictError(f"a {order.state} work order can no longer be changed")
    changes = body.model_dump(exclude_unset=True, mode="json")
    note = changes.pop("note", None)
    for name, value in body.model_dump(exclude_unset=True).items():
        if name != "note":
            setattr(order, name, value)
    if note:
        order.notes = [*order.notes, _note(principal.actor, now, note)]
        changes["note"] = note
    order.updated_at = now
    audit.record(session, principal.actor, "update", "work_order", order.id, changes)
    events.work_order_event(session, order, "update")


def verify_due(session: Session, now: datetime) -> list[int]:
    """Mark completed-as-fixed orders verified once their quiet period passed; their ids."""
    due = session.scalars(
        sa.select(WorkOrder)
        .where(WorkOrder.state == "completed", WorkOrder.verify_due_at <= now)
        .with_for_update()
    ).all()
    verified = []
    for order in due:
        active = session.scalar(
            sa.select(sa.func.count())
            .select_from(Alert)
            .where(
                Alert.asset_id == order.asset_id,
                Alert.failure_mode == order.failure_mode,
                Alert.condition_active.is_(True),
            )
        )
        if active:
            continue  # the alert side reopens it; never verify while the condition is on
        order.verified_at = now
        _set_state(order, "verified", now)
        audit.record(
            session,
            "system",
            "verify",
            "work_order",
            order.id,
            {"quiet_since": str(order.completed_at)},
        )
        events.work_order_event(session, order, "verify")
        verified.append(order.id)
    return verified
