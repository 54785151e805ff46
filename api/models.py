"""SQL models (SQLAlchemy 2, typed): sites → areas → assets → sensors, alerts, work orders, auth."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base; constraint names are fixed so migrations can refer to them."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it at class creation)
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON,
        list[Any]: sa.JSON,
    }


class Site(Base):
    """A plant, building or campus; its code is the `site` tag of readings."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(128), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Area(Base):
    """A part of a site (hall, floor, plant room) that groups assets."""

    __tablename__ = "areas"
    __table_args__ = (sa.UniqueConstraint("site_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")


class Asset(Base):
    """A maintainable piece of equipment; its code is the `asset` tag of readings."""

    __tablename__ = "assets"
    __table_args__ = (sa.UniqueConstraint("site_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str] = mapped_column(sa.String(200))
    asset_type: Mapped[str] = mapped_column(sa.String(64))
    criticality: Mapped[str] = mapped_column(sa.String(16), default="medium")
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    make: Mapped[str] = mapped_column(sa.String(100), default="")
    model: Mapped[str] = mapped_column(sa.String(100), default="")
    serial: Mapped[str] = mapped_column(sa.String(100), default="")
    installed_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sensor(Base):
    """One measured quantity of an asset, with its unit and physical limits."""

    __tablename__ = "sensors"
    __table_args__ = (sa.UniqueConstraint("asset_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(128))
    unit: Mapped[str] = mapped_column(sa.String(32), default="")
    min_value: Mapped[float | None]
    max_value: Mapped[float | None]
    description: Mapped[str] = mapped_column(sa.Text, default="")


class User(Base):
    """A person who logs in; the password is stored as an scrypt hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token (stored as sha256 of its random secret); of a user, or of a machine."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Alert(Base):
    """One alert per (asset, kind, failure mode): recurrences update it (ISA-18.2 states)."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.UniqueConstraint("asset_id", "kind", "failure_mode"),
        # The list's order (updated_at, id descending) for keyset pages.
        sa.Index("ix_alerts_updated_at_id", "updated_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    failure_mode: Mapped[str] = mapped_column(sa.String(128))
    state: Mapped[str] = mapped_column(sa.String(32), index=True)
    condition_active: Mapped[bool]
    severity: Mapped[str] = mapped_column(sa.String(16))
    health: Mapped[float | None]
    score: Mapped[float | None]
    threshold: Mapped[float | None]
    message: Mapped[str] = mapped_column(sa.Text, default="")
    contributors: Mapped[list[Any]] = mapped_column(default=list)
    occurrences: Mapped[int] = mapped_column(default=1)
    opened_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    last_detected_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(200))
    shelved_until: Mapped[datetime | None]
    # The current work order; no foreign key, since work_orders refers back here (a cycle
    # SQLite could only create with ALTER TABLE, which it lacks).
    work_order_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AlertEvent(Base):
    """The alert's history: every occurrence, return, acknowledgement, shelving, with who/why."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    state_from: Mapped[str | None] = mapped_column(sa.String(32))
    state_to: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WorkOrder(Base):
    """A job for a technician; `open_key` is set while open so one exists per asset and mode."""

    __tablename__ = "work_orders"
    __table_args__ = (
        sa.UniqueConstraint("created_by", "idempotency_key"),
        # The list's filters with its order (id descending): keyset pages read the index
        # instead of sorting every match (EXPLAIN, issue 20).
        sa.Index("ix_work_orders_state_priority_id", "state", "priority", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    work_type: Mapped[str] = mapped_column(sa.String(32))
    failure_mode: Mapped[str | None] = mapped_column(sa.String(128))
    # "<asset_id>:<failure_mode>" until verified/cancelled/closed, NULL otherwise: unique, and
    # NULLs never collide on SQLite or PostgreSQL, so this is a portable partial unique index.
    open_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    priority: Mapped[int] = mapped_column(default=3)
    due_at: Mapped[datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    alert_id: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    # The preventive-maintenance plan that generated this order (None for the others).
    pm_plan_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("pm_plans.id", ondelete="SET NULL"), index=True
    )
    checklist: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    parts_used: Mapped[list[Any]] = mapped_column(default=list)
    labour_minutes: Mapped[int] = mapped_column(default=0)
    downtime_minutes: Mapped[int] = mapped_column(default=0)
    resolution: Mapped[str | None] = mapped_column(sa.String(16))
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    cause: Mapped[str | None] = mapped_column(sa.Text)
    remedy: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    verify_due_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    version: Mapped[int] = mapped_column(default=1)

    # Every UPDATE is `... WHERE version = :seen`; a lost race raises StaleDataError (→ 412).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class WorkOrderEvidence(Base):
    """An alert occurrence attached to a work order: leading sensors and a chart window."""

    __tablename__ = "work_order_evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(
        sa.ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(sa.String(16))
    score: Mapped[float | None]
    contributors: Mapped[list[Any]] = mapped_column(default=list)
    chart_url: Mapped[str] = mapped_column(sa.String(500))


class AuditEntry(Base):
    """Who changed what, when: one row per create, update, transition or deletion."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(32))
    entity: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[int | None]
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Webhook(Base):
    """An outbound subscription; the secret is kept as given, since HMAC signing needs it."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    events: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(sa.String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to POST to one webhook: pending (with its next try), delivered or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(sa.String(64))
    event_id: Mapped[str] = mapped_column(sa.String(64))
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class AssetStatus(Base):
    """The latest condition the analytics service reported for an asset (one row per asset)."""

    __tablename__ = "asset_status"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assets.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(sa.String(16))
    health: Mapped[float | None]
    score: Mapped[float | None]
    threshold: Mapped[float | None]
    contributors: Mapped[list[Any]] = mapped_column(default=list)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    observed_at: Mapped[datetime]
    learning_until: Mapped[datetime | None]
    # Since when health has been poor without a break (None while it is not): preventive
    # maintenance counts condition that *stays* poor, not one bad minute.
    poor_since: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Meter(Base):
    """A counter of an asset: running hours, starts, or any quantity that only grows.

    ``value`` is what the meter shows (as read, or as analytics counts it); ``total`` is the
    lifetime count across resets (a replaced hour-meter starts again at 0), which plans use.
    """

    __tablename__ = "meters"
    __table_args__ = (sa.UniqueConstraint("asset_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    unit: Mapped[str] = mapped_column(sa.String(32), default="")
    value: Mapped[float] = mapped_column(sa.Double, default=0.0)
    total: Mapped[float] = mapped_column(sa.Double, default=0.0)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeterReading(Base):
    """One reading of a meter (manual, or counted from telemetry by analytics)."""

    __tablename__ = "meter_readings"
    __table_args__ = (sa.Index("ix_meter_readings_meter_at", "meter_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(sa.ForeignKey("meters.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    value: Mapped[float] = mapped_column(sa.Double)
    total: Mapped[float] = mapped_column(sa.Double)
    reset: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PmPlan(Base):
    """A preventive-maintenance plan: what to do, on which assets, when (calendar and/or meter)."""

    __tablename__ = "pm_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # One asset, or every asset of a type in the site (a plan on "all pumps").
    asset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    asset_type: Mapped[str | None] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # The failure mode the plan prevents (e.g. bearing_wear): a corrective order of that mode
    # completed on the asset shortly before the plan falls due counts as this cycle's work.
    failure_mode: Mapped[str | None] = mapped_column(sa.String(128))
    priority: Mapped[int] = mapped_column(default=3)
    estimated_minutes: Mapped[int] = mapped_column(default=0)
    checklist: Mapped[list[Any]] = mapped_column(default=list)
    # Calendar trigger: every N days/weeks/months, from the last completion or on a fixed
    # schedule from starts_at; lead_days before the due date the order is generated.
    every: Mapped[int | None]
    unit: Mapped[str | None] = mapped_column(sa.String(8))
    anchor: Mapped[str] = mapped_column(sa.String(16), default="completion")
    starts_at: Mapped[datetime]
    lead_days: Mapped[float] = mapped_column(sa.Double, default=0.0)
    # Meter trigger: every meter_every of meter_name (lifetime total), meter_lead before it.
    meter_name: Mapped[str | None] = mapped_column(sa.String(64))
    meter_every: Mapped[float | None] = mapped_column(sa.Double)
    meter_lead: Mapped[float] = mapped_column(sa.Double, default=0.0)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PmSchedule(Base):
    """Where one plan stands on one asset: the baseline of its cycle and what is due next."""

    __tablename__ = "pm_schedules"
    __table_args__ = (sa.UniqueConstraint("plan_id", "asset_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("pm_plans.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    next_due_at: Mapped[datetime | None]
    next_due_meter: Mapped[float | None] = mapped_column(sa.Double)
    last_done_at: Mapped[datetime | None]
    # How the last cycle ended: "done" (completed), "late" (completed after it was due),
    # "skipped" (cancelled), "merged" (a corrective order did the work); None before the first.
    last_outcome: Mapped[str | None] = mapped_column(sa.String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChangeCounter(Base):
    """A revision number per table, bumped in the same transaction as every write to it.

    Conditional GETs (ETag / If-None-Match) are answered from these: a reader sees a new
    revision exactly when it can see the write (api/revisions.py).
    """

    __tablename__ = "change_counters"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # A few rows per table: a writer bumps one of them, readers add them up, so concurrent
    # writers of one table rarely queue on one row lock (PostgreSQL holds it to commit).
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class LoginFailure(Base):
    """Failed logins of one throttle key (`user:<name>`, `address:<ip>`), shared by every API
    process; times are seconds of the throttle's clock (wall clock unless a test moves one)."""

    __tablename__ = "login_failures"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure: Mapped[float] = mapped_column(sa.Double, default=0.0)
    locked_until: Mapped[float] = mapped_column(sa.Double, default=0.0)


# Work requests, request links and the notification tables live in modules of their own (this
# one is long enough); importing them here puts them in Base.metadata wherever the models are
# loaded, and keeps `from api.models import …` the one way to name a model.
from api.models_notify import ActionLink as ActionLink  # noqa: E402, PLC0414
from api.models_notify import AlertEscalation as AlertEscalation  # noqa: E402, PLC0414
from api.models_notify import ChatChannel as ChatChannel  # noqa: E402, PLC0414
from api.models_notify import Notification as Notification  # noqa: E402, PLC0414
from api.models_notify import NotificationRule as NotificationRule  # noqa: E402, PLC0414
from api.models_notify import NotificationSettings as NotificationSettings  # noqa: E402, PLC0414
from api.models_notify import NotifyEvent as NotifyEvent  # noqa: E402, PLC0414
from api.models_notify import OnCallOverride as OnCallOverride  # noqa: E402, PLC0414
from api.models_notify import OnCallShift as OnCallShift  # noqa: E402, PLC0414
from api.models_requests import RequestLink as RequestLink  # noqa: E402, PLC0414 (re-export)
from api.models_requests import WorkRequest as WorkRequest  # noqa: E402, PLC0414
