"""The outbox worker's parts: overdue orders, flood summaries, claiming and recording sends."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import (
    ActionLink,
    ChatChannel,
    Notification,
    NotificationSettings,
    NotifyEvent,
    Site,
    WorkOrder,
)
from api.services import notify
from api.services.notify import rota, texts
from api.services.notify.channels import Outgoing
from api.services.outbox import BATCH, lease_due, settle
from api.services.policy import UNFINISHED
from api.settings import NotifySettings
from telemetry.retry import Backoff

log = logging.getLogger(__name__)


def queue_overdue(session: Session, now: datetime) -> int:
    """Queue work_order.overdue once per order and due date for orders past due."""
    told = sa.exists().where(
        NotifyEvent.work_order_id == WorkOrder.id,
        NotifyEvent.kind == "work_order.overdue",
        NotifyEvent.created_at >= WorkOrder.due_at,
    )
    rows = session.execute(
        sa.select(WorkOrder.id, WorkOrder.site_id, WorkOrder.due_at)
        .where(WorkOrder.due_at <= now, WorkOrder.state.in_(("open", *UNFINISHED)), ~told)
        .order_by(WorkOrder.due_at)
        .limit(BATCH)
    ).all()
    queued = 0
    for order_id, site_id, due_at in rows:
        assert due_at is not None  # the query asks for due_at <= now
        key = f"overdue:{order_id}:{int(due_at.timestamp())}"
        if session.scalar(sa.select(NotifyEvent.id).where(NotifyEvent.dedup_key == key)):
            continue
        notify.queue(
            session, "work_order.overdue", site_id, work_order_id=order_id, dedup_key=key, now=now
        )
        queued += 1
    return queued


def release_floods(session: Session, settings: NotifySettings, now: datetime) -> int:
    """Turn each recipient's held flood whose window passed into one summary message."""
    groups = session.execute(
        sa.select(Notification.recipient, Notification.channel)
        .where(Notification.status == "held", Notification.next_attempt_at <= now)
        .distinct()
    ).all()
    for recipient, channel in groups:
        held = session.scalars(
            sa.select(Notification)
            .where(
                Notification.recipient == recipient,
                Notification.channel == channel,
                Notification.status == "held",
            )
            .order_by(Notification.id)
            .with_for_update()
        ).all()
        if not held:
            continue
        first = held[0]
        prefs = session.get(NotificationSettings, first.user_id) if first.user_id else None
        language = prefs.language if prefs else texts.DEFAULT_LANGUAGE
        site_ids = {row.site_id for row in held if row.site_id is not None}
        codes = session.scalars(sa.select(Site.code).where(Site.id.in_(site_ids))).all()
        lines = [f"- {row.subject}" for row in held[: texts.FLOOD_LINES]]
        if len(held) > texts.FLOOD_LINES:
            lines.append(f"- … +{len(held) - texts.FLOOD_LINES}")
        span = max((held[-1].created_at - first.created_at).total_seconds(), 1)
        message = texts.render(
            "flood.summary",
            language,
            {
                "count": len(held),
                "window": f"{span:.0f} s",
                "sites": ", ".join(sorted(codes)),
                "lines": "\n".join(lines),
                "dashboard": f"{settings.public_url}/ui/alerts",
            },
        )
        deliver_at = now
        if prefs is not None:
            deliver_at = (
                rota.quiet_until(prefs.quiet_start, prefs.quiet_end, prefs.timezone, now) or now
            )
        summary = Notification(
            event="flood.summary",
            site_id=first.site_id if len(site_ids) == 1 else None,
            recipient=recipient,
            user_id=first.user_id,
            chat_channel_id=first.chat_channel_id,
            channel=channel,
            address=first.address,
            severity=None,
            subject=message.subject,
            body_text=message.text,
            body_html=message.html,
            status="pending",
            attempts=0,
            next_attempt_at=deliver_at,
            created_at=now,
        )
        session.add(summary)
        session.flush()
        for row in held:
            row.status, row.group_id = "grouped", summary.id
    return len(groups)


def claim(session: Session, now: datetime) -> list[Outgoing]:
    """Lease a batch of due messages (no row lock is held while they are sent)."""
    query = sa.select(Notification, ChatChannel).outerjoin(
        ChatChannel, ChatChannel.id == Notification.chat_channel_id
    )
    jobs = []
    for row, chat in lease_due(session, query, Notification, now):
        jobs.append(
            Outgoing(
                row.id,
                row.channel,
                row.address,
                row.subject,
                row.body_text,
                row.body_html,
                row.link,
                chat.url if chat else "",
                chat.token if chat else "",
            )
        )
    return jobs


def record(
    session: Session, settings: NotifySettings, item: Outgoing, error: str | None, now: datetime
) -> str:
    """Record an attempt: delivered, retried later with backoff, or dead; the new status."""
    row = session.get(Notification, item.id, with_for_update=True)
    if row is None:
        return "gone"
    status = settle(
        row,
        error,
        max_attempts=settings.max_attempts,
        policy=Backoff(settings.backoff_s, settings.backoff_max_s),
        given_up="dead",
        now=now,
    )
    if status == "dead":
        log.error(
            "notification %s to %s over %s is dead: %s", row.id, row.address, row.channel, error
        )
    return status


def purge(session: Session, settings: NotifySettings, now: datetime) -> int:
    """Forget what was fully handled longer than the retention ago; rows deleted."""
    cutoff = now - timedelta(days=settings.retention_days)
    done = session.execute(
        sa.delete(Notification).where(
            Notification.status.in_(("delivered", "grouped")), Notification.created_at < cutoff
        )
    )
    events = session.execute(sa.delete(NotifyEvent).where(NotifyEvent.processed_at < cutoff))
    links = session.execute(sa.delete(ActionLink).where(ActionLink.expires_at < cutoff))
    counts: list[int] = [getattr(r, "rowcount", 0) or 0 for r in (done, events, links)]
    return sum(counts)


def dead_by_channel(session: Session) -> dict[str, int]:
    """How many messages are dead, per channel (for /metrics and the dashboard)."""
    rows = session.execute(
        sa.select(Notification.channel, sa.func.count())
        .where(Notification.status == "dead")
        .group_by(Notification.channel)
    ).all()
    return {str(channel): int(count) for channel, count in rows}
