"""From queued events to outbox rows: rules, recipients, quiet hours, floods, escalation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import (
    Alert,
    AlertEscalation,
    AlertEvent,
    Asset,
    Notification,
    NotificationRule,
    NotifyEvent,
    Site,
    WorkOrder,
)
from api.services.notify import links, rota, texts
from api.services.notify.recipients import Recipient, resolve
from api.services.policy import RANK
from api.settings import NotifySettings

log = logging.getLogger(__name__)

ALERT_KINDS = frozenset({"alert.raised", "alert.escalated", "alert.returned_unacknowledged"})
# Only what a flood is made of is held: new alarms that are not critical.
FLOODABLE = frozenset({"alert.raised"})
BATCH = 100


@dataclass(frozen=True)
class Config:
    """What fan-out needs besides the database: the settings and the link key."""

    settings: NotifySettings
    secret: bytes


@dataclass
class Subject:
    """The alert or work order an event is about, with its site and asset."""

    site: Site
    asset: Asset | None
    alert: Alert | None = None
    order: WorkOrder | None = None

    def context(self) -> dict[str, Any]:
        """Placeholders of the texts."""
        ctx: dict[str, Any] = {
            "site": self.site.code,
            "asset": self.asset.code if self.asset else "",
            "asset_name": self.asset.name if self.asset else "",
            # Times are datetimes here: texts.render writes them in the site's zone, with the
            # offset, in the recipient's language.
            "timezone": self.site.timezone,
        }
        if self.alert is not None:
            ctx |= {
                "severity": self.alert.severity,
                "failure_mode": self.alert.failure_mode,
                "message": self.alert.message,
            }
        if self.order is not None:
            due = self.order.due_at or "-"
            ctx |= {
                "order_id": self.order.id,
                "title": self.order.title,
                "priority": self.order.priority,
                "due": due,
                "state": self.order.state,
            }
        return ctx


def _subject(session: Session, event: NotifyEvent) -> Subject | None:
    site = session.get(Site, event.site_id)
    if site is None:
        return None
    alert = session.get(Alert, event.alert_id) if event.alert_id else None
    order = session.get(WorkOrder, event.work_order_id) if event.work_order_id else None
    asset_id = alert.asset_id if alert else order.asset_id if order else None
    asset = session.get(Asset, asset_id) if asset_id else None
    return Subject(site, asset, alert, order)


def rules_for(session: Session, kind: str, site_id: int, severity: str | None) -> list[Any]:
    """The active rules of an event kind that apply to the site (and severity)."""
    rules = session.scalars(
        sa.select(NotificationRule)
        .where(
            NotificationRule.active.is_(True),
            NotificationRule.event == kind,
            sa.or_(NotificationRule.site_id.is_(None), NotificationRule.site_id == site_id),
        )
        .order_by(NotificationRule.id)
    ).all()
    if severity is None:
        return list(rules)
    return [r for r in rules if RANK.get(severity, 2) >= RANK.get(r.min_severity, 1)]


def _deliver_at(recipient: Recipient, severity: str | None, now: datetime) -> datetime:
    prefs = recipient.prefs
    if prefs is None:
        return now
    if severity == "critical" and prefs.critical_overrides_quiet:
        return now
    return rota.quiet_until(prefs.quiet_start, prefs.quiet_end, prefs.timezone, now) or now


def _flooding(session: Session, config: Config, key: str, channel: str, now: datetime) -> bool:
    since = now - timedelta(seconds=config.settings.flood_window_s)
    return (
        session.scalar(
            sa.select(Notification.id)
            .where(
                Notification.recipient == key,
                Notification.channel == channel,
                Notification.event.in_([*ALERT_KINDS, "flood.summary"]),
                Notification.created_at >= since,
            )
            .limit(1)
        )
        is not None
    )


def _hold(session: Session, config: Config, row: Notification, now: datetime) -> None:
    """Hold row in its recipient's flood; the flood is released a window after its last one."""
    first = session.scalar(
        sa.select(sa.func.min(Notification.created_at)).where(
            Notification.recipient == row.recipient,
            Notification.channel == row.channel,
            Notification.status == "held",
        )
    )
    release = now + timedelta(seconds=config.settings.flood_window_s)
    if first is not None:
        release = min(release, first + timedelta(seconds=config.settings.flood_max_hold_s))
    row.status, row.next_attempt_at = "held", release
    session.execute(
        sa.update(Notification)
        .where(
            Notification.recipient == row.recipient,
            Notification.channel == row.channel,
            Notification.status == "held",
        )
        .values(next_attempt_at=release)
    )


def send(  # noqa: PLR0917 (one message to one recipient reads best positionally)
    session: Session,
    config: Config,
    recipient: Recipient,
    kind: str,
    subject: Subject,
    context: dict[str, Any],
    dedup: str,
    now: datetime,
) -> int:
    """Queue one message of kind to recipient on each of their channels; how many were queued."""
    link_action, entity = None, None
    if subject.alert is not None and kind in ALERT_KINDS:
        link_action, entity = "acknowledge_alert", subject.alert.id
    elif (
        subject.order is not None
        and subject.order.state in ("open", "assigned")
        and recipient.user is not None  # accepting makes it someone's work: a person's link
    ):
        link_action, entity = "accept_work_order", subject.order.id
    link = None
    if link_action is not None and entity is not None and recipient.addresses:
        user_id = recipient.user.id if recipient.user else None
        token = links.issue(
            session, config.secret, link_action, entity, user_id, recipient.label, now,
            config.settings.link_ttl_s,
        )  # fmt: skip
        link = links.url(config.settings.public_url, link_action, token)
    message = texts.render(kind, recipient.language, context, link, link_action)
    severity = subject.alert.severity if subject.alert else None
    queued = 0
    for address in recipient.addresses:
        key = f"{dedup}:{recipient.key}:{address.channel}"
        if session.scalar(sa.select(Notification.id).where(Notification.dedup_key == key)):
            continue
        row = Notification(
            event=kind,
            site_id=subject.site.id,
            recipient=recipient.key,
            user_id=recipient.user.id if recipient.user else None,
            chat_channel_id=address.chat.id if address.chat else None,
            channel=address.channel,
            address=address.address,
            alert_id=subject.alert.id if subject.alert else None,
            work_order_id=subject.order.id if subject.order else None,
            severity=severity,
            subject=message.subject,
            body_text=message.text,
            body_html=message.html,
            link=message.link,
            status="pending",
            attempts=0,
            next_attempt_at=_deliver_at(recipient, severity, now),
            dedup_key=key,
            created_at=now,
        )
        if (
            kind in FLOODABLE
            and severity != "critical"
            and _flooding(session, config, recipient.key, address.channel, now)
        ):
            _hold(session, config, row, now)
        session.add(row)
        session.flush()
        queued += 1
    return queued


def history(session: Session, alert: Alert, event: str, at: datetime, **detail: Any) -> None:
    """An entry of the alert's history written by the notifier (no webhook: not a change)."""
    session.add(
        AlertEvent(
            alert_id=alert.id,
            site_id=alert.site_id,
            at=at,
            event=event,
            actor="notifier",
            reason=detail.pop("reason", ""),
            state_from=alert.state,
            state_to=alert.state,
            detail=detail,
        )
    )


def _step(  # noqa: PLR0917 (one step of a rule reads best positionally)
    session: Session, config: Config, subject: Subject, kind: str, targets: list[str],
    dedup: str, now: datetime, extra: dict[str, Any] | None = None,
) -> list[str]:  # fmt: skip
    assignee = subject.order.assignee_id if subject.order else None
    recipients = resolve(session, targets, site_id=subject.site.id, assignee_id=assignee, at=now)
    context = subject.context() | (extra or {})
    told = []
    for recipient in recipients:
        if send(session, config, recipient, kind, subject, context, dedup, now):
            told.append(recipient.label)
    return told


def process(session: Session, config: Config, event: NotifyEvent, now: datetime) -> None:
    """Fan one queued event out: first steps now, escalations scheduled for the later ones."""
    subject = _subject(session, event)
    if subject is None:
        return
    severity = subject.alert.severity if subject.alert else None
    for rule in rules_for(session, event.kind, event.site_id, severity):
        steps = rule.steps or [{"after_minutes": 0, "to": ["assignee"]}]
        first = steps[0]
        dedup = f"e{event.id}"
        told = _step(session, config, subject, event.kind, first["to"], dedup, now)
        if subject.alert is None:
            continue
        history(
            session, subject.alert, "notified", now, rule=rule.id, step=0, recipients=told,
            reason=f"{rule.name}: " + (", ".join(told) or "nobody on call with an address"),
        )  # fmt: skip
        if event.kind == "alert.raised" and len(steps) > 1:
            session.add(
                AlertEscalation(
                    alert_id=subject.alert.id,
                    rule_id=rule.id,
                    occurrence=int(event.data.get("occurrence", subject.alert.occurrences)),
                    next_step=1,
                    next_at=event.created_at + _after(config, steps[1]),
                    status="active",
                    created_at=now,
                )
            )


def _after(config: Config, step: dict[str, Any]) -> timedelta:
    return timedelta(seconds=float(step.get("after_minutes", 0)) * config.settings.minute_s)


def pending_events(session: Session) -> list[int]:
    """Ids of the oldest queued events not fanned out yet."""
    ids = session.scalars(
        sa.select(NotifyEvent.id)
        .where(NotifyEvent.processed_at.is_(None))
        .order_by(NotifyEvent.id)
        .limit(BATCH)
    ).all()
    return list(ids)


def process_event(session: Session, config: Config, event_id: int, now: datetime) -> bool:
    """Fan one queued event out, unless another replica has it or had it; whether it did."""
    event = session.scalar(
        sa.select(NotifyEvent)
        .where(NotifyEvent.id == event_id, NotifyEvent.processed_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    if event is None:
        return False
    process(session, config, event, now)
    event.processed_at = now
    return True


def fail_event(session: Session, event_id: int, error: str, now: datetime) -> None:
    """Set aside an event whose fan-out failed (so it cannot block the queue); kept with why."""
    event = session.get(NotifyEvent, event_id, with_for_update=True)
    if event is not None and event.processed_at is None:
        event.processed_at = now
        event.data = {**event.data, "error": error[:2000]}


def due_escalations(session: Session, now: datetime) -> list[int]:
    """Ids of escalations whose next step is due."""
    ids = session.scalars(
        sa.select(AlertEscalation.id)
        .where(AlertEscalation.status == "active", AlertEscalation.next_at <= now)
        .order_by(AlertEscalation.next_at)
        .limit(BATCH)
    ).all()
    return list(ids)


def escalate(session: Session, config: Config, escalation_id: int, now: datetime) -> bool:
    """Take one due escalation a step further, or stop it if the alert was handled.

    The alert is locked before the escalation, in the order acknowledging takes them.
    """
    found = session.get(AlertEscalation, escalation_id)
    if found is None:
        return False
    alert = session.get(Alert, found.alert_id, with_for_update=True)
    escalation = session.scalar(
        sa.select(AlertEscalation)
        .where(
            AlertEscalation.id == escalation_id,
            AlertEscalation.status == "active",
            AlertEscalation.next_at <= now,
        )
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if escalation is None:
        return False
    rule = session.get(NotificationRule, escalation.rule_id)
    if alert is None or rule is None:
        escalation.status = "stopped"
        return True
    if alert.state != "active_unacknowledged" or alert.occurrences != escalation.occurrence:
        stop(session, alert, now, f"alert is {alert.state}")
        return True
    if not rule.active or escalation.next_step >= len(rule.steps):
        # The rule was switched off or shortened (PUT) since the escalation began.
        escalation.status = "done"
        return True
    step = rule.steps[escalation.next_step]
    site = session.get(Site, alert.site_id)
    assert site is not None  # foreign key
    subject = Subject(site, session.get(Asset, alert.asset_id), alert)
    minutes = float(step.get("after_minutes", 0))
    extra = {"minutes": f"{minutes:g}", "step": escalation.next_step}
    dedup = f"x{escalation.id}.{escalation.next_step}"
    told = _step(session, config, subject, "alert.escalated", step["to"], dedup, now, extra)
    levels = [
        rota.LEVEL_NAMES.get(int(t.split(":")[1]), t)
        for t in step["to"]
        if t.startswith("on_call:")
    ]
    history(
        session, alert, "escalated", now, rule=rule.id, step=escalation.next_step,
        recipients=told, levels=levels,
        reason=f"not acknowledged after {minutes:g} min: " + (", ".join(told) or "nobody"),
    )  # fmt: skip
    escalation.next_step += 1
    if escalation.next_step >= len(rule.steps):
        escalation.status = "done"
    else:
        start = escalation.next_at - _after(config, step)
        escalation.next_at = start + _after(config, rule.steps[escalation.next_step])
    return True


def fail_escalation(session: Session, escalation_id: int) -> None:
    """Set aside an escalation whose step failed (so it cannot block the others)."""
    escalation = session.get(AlertEscalation, escalation_id, with_for_update=True)
    if escalation is not None:
        escalation.status = "failed"


def stop(session: Session, alert: Alert, now: datetime, why: str) -> None:
    """Stop the alert's escalations in progress (history says so, once)."""
    active = session.scalars(
        sa.select(AlertEscalation).where(
            AlertEscalation.alert_id == alert.id, AlertEscalation.status == "active"
        )
    ).all()
    for escalation in active:
        escalation.status = "stopped"
    if active:
        history(session, alert, "escalation_stopped", now, reason=why)
