"""Notifications: events are queued in the transaction of the change (`alert_event`,
`work_order_event`); the worker (`worker.tick`) fans them out by rule and rota into the outbox
and delivers it by e-mail and chat, with escalation, flood grouping and retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.models import Alert, NotifyEvent, WorkOrder, utcnow

# Alert history entries after which no escalation should go on.
HANDLED = frozenset({"acknowledged", "shelve", "suppress", "remove_from_service"})


def queue(
    session: Session,
    kind: str,
    site_id: int,
    *,
    alert_id: int | None = None,
    work_order_id: int | None = None,
    data: dict[str, Any] | None = None,
    dedup_key: str | None = None,
    now: datetime | None = None,
) -> None:
    """Queue an event for the notifier (commits with the caller's change)."""
    session.add(
        NotifyEvent(
            kind=kind,
            site_id=site_id,
            alert_id=alert_id,
            work_order_id=work_order_id,
            data=data or {},
            dedup_key=dedup_key,
            created_at=now or utcnow(),
        )
    )


def alert_event(session: Session, alert: Alert, history_event: str, at: datetime) -> None:
    """The notifications an alert history entry causes (and the escalations it ends).

    `at` is when the condition was detected (it may lie in the past); escalation counts
    from now, when people can first be told.
    """
    del at
    if history_event == "activated":
        data = {"occurrence": alert.occurrences, "severity": alert.severity}
        queue(session, "alert.raised", alert.site_id, alert_id=alert.id, data=data)
    elif history_event == "returned_to_normal" and alert.state == "rtn_unacknowledged":
        queue(session, "alert.returned_unacknowledged", alert.site_id, alert_id=alert.id)
    if history_event in HANDLED or history_event == "returned_to_normal":
        from api.services.notify.fanout import stop

        stop(session, alert, utcnow(), f"{history_event} ({alert.state})")


def work_order_event(session: Session, order: WorkOrder, action: str) -> None:
    """The notifications a work-order change causes: assigned, PM due, verification failed."""
    kinds = []
    if action in ("create", "transition") and order.state == "assigned" and order.assignee_id:
        kinds.append("work_order.assigned")
    if action == "create" and order.pm_plan_id is not None:
        kinds.append("pm.due_soon")
    if action == "reopen":
        kinds.append("verification.failed")
    for kind in kinds:
        data = {"assignee_id": order.assignee_id}
        queue(session, kind, order.site_id, work_order_id=order.id, data=data)
