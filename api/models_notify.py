"""SQL models of notifications (docs/notifications.md): rules, the on-call rota, people's
preferences, site chat channels, the event queue and outbox, escalations in progress, and
signed action links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, utcnow


class NotificationRule(Base):
    """Who is told about which event of a site (None = every site), step by step."""

    __tablename__ = "notification_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    site_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(sa.String(32))
    min_severity: Mapped[str] = mapped_column(sa.String(16), default="low")
    # [{"after_minutes": 0, "to": ["on_call:1"]}, {"after_minutes": 15, "to": ["on_call:2"]}]
    steps: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OnCallShift(Base):
    """A weekly shift: `level` of the site's rota is `user_id` on weekday from starts to ends."""

    __tablename__ = "on_call_shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(default=1)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # 0 = Monday; local times ("HH:MM") of the site's time zone; ends <= starts runs overnight.
    weekday: Mapped[int]
    starts: Mapped[str] = mapped_column(sa.String(5))
    ends: Mapped[str] = mapped_column(sa.String(5))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OnCallOverride(Base):
    """A swap or cover: `user_id` holds `level` of the site's rota between two instants."""

    __tablename__ = "on_call_overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(default=1)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationSettings(Base):
    """A person's channels, addresses, language and quiet hours."""

    __tablename__ = "notification_settings"
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channels: Mapped[list[Any]] = mapped_column(default=list)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    telegram_chat_id: Mapped[str | None] = mapped_column(sa.String(64))
    zalo_user_id: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str] = mapped_column(sa.String(16), default="en")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))
    critical_overrides_quiet: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatChannel(Base):
    """A site's chat destination: a Slack or Teams webhook, a Telegram bot, a Zalo OA."""

    __tablename__ = "chat_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str] = mapped_column(sa.String(2000), default="")
    # A bot token or OA access token: kept as given (sending needs it), never returned.
    token: Mapped[str] = mapped_column(sa.String(500), default="")
    chat_id: Mapped[str] = mapped_column(sa.String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyEvent(Base):
    """Something to tell people about, queued in the transaction of the change itself."""

    __tablename__ = "notify_events"
    __table_args__ = (sa.Index("ix_notify_events_pending", "processed_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    site_id: Mapped[int]
    alert_id: Mapped[int | None]
    work_order_id: Mapped[int | None]
    # Unique when set: an overdue order is queued once per due date.
    dedup_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class Notification(Base):
    """The outbox: one message to one recipient over one channel, with its delivery state.

    status: pending (next_attempt_at is the next try), held (in a flood, until grouped),
    grouped (sent as part of the summary `group_id`), delivered, dead (gave up).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_due", "status", "next_attempt_at"),
        sa.Index("ix_notifications_recipient", "recipient", "channel", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    site_id: Mapped[int | None]
    recipient: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    chat_channel_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("chat_channels.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(320))
    alert_id: Mapped[int | None]
    work_order_id: Mapped[int | None]
    severity: Mapped[str | None] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text, default="")
    link: Mapped[str | None] = mapped_column(sa.String(2000))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    group_id: Mapped[int | None]
    dedup_key: Mapped[str | None] = mapped_column(sa.String(300), unique=True)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class AlertEscalation(Base):
    """An escalation in progress: the next step of a rule for one occurrence of an alert."""

    __tablename__ = "alert_escalations"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "rule_id", "occurrence"),
        sa.Index("ix_alert_escalations_due", "status", "next_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("notification_rules.id", ondelete="CASCADE"))
    occurrence: Mapped[int]
    next_step: Mapped[int]
    next_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime]


class ActionLink(Base):
    """A signed single-use link: do `action` on `entity_id` as `user_id` until `expires_at`."""

    __tablename__ = "action_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[int]
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # Who the link was sent to when no user (a site chat channel): named in the audit log.
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
