"""Notification rules, the on-call rota, people's preferences, chat channels and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, HttpUrl, field_validator, model_validator

from api.schemas.common import MAX_ID, NO_NUL, Id, PublicSchema, Schema, Severity, Text, UtcDatetime
from api.services.notify.recipients import TARGET

RuleEvent = Literal[
    "alert.raised",
    "alert.returned_unacknowledged",
    "work_order.assigned",
    "work_order.overdue",
    "pm.due_soon",
    "verification.failed",
]
ChatKind = Literal["slack", "teams", "telegram", "zalo"]
UserChannel = Literal["email", "telegram", "zalo"]
DeliveryState = Literal["pending", "held", "grouped", "delivered", "dead"]
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def _id_fits(target: str) -> str:
    # user:<id> and chat:<id> must be ids that can exist (SQL INTEGER): else a rule would
    # name a row the database cannot even look up.
    _, _, value = target.partition(":")
    if value.isdigit() and int(value) > MAX_ID:
        raise ValueError(f"{target!r} names an id beyond {MAX_ID}")
    return target


Target = Annotated[
    str,
    Field(
        pattern=TARGET.pattern,
        description="on_call:<level>, user:<id>, role:<role>, assignee or chat:<channel id>",
    ),
    AfterValidator(_id_fits),
]


class RuleStep(Schema):
    """Tell `to` once `after_minutes` passed without acknowledgement (0: at once)."""

    after_minutes: float = Field(0, ge=0, le=7 * 24 * 60)
    to: list[Target] = Field(min_length=1, max_length=20)


class NotificationRuleCreate(Schema):
    """Who hears of an event of a site (every site when site_id is null), step by step.

    Only `alert.raised` escalates: its later steps run while the alert stays unacknowledged.
    Other events use the first step.
    """

    name: str = Text(200, 1)
    site_id: Id | None = None
    event: RuleEvent
    min_severity: Severity = Field("low", description="Alerts: this severity and above.")
    steps: list[RuleStep] = Field(min_length=1, max_length=10)
    active: bool = True

    @field_validator("steps")
    @classmethod
    def _in_order(cls, steps: list[RuleStep]) -> list[RuleStep]:
        times = [s.after_minutes for s in steps]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("steps must come in strictly increasing after_minutes")
        return steps


class NotificationRulePublic(PublicSchema):
    """A rule as stored."""

    id: int
    name: str
    site_id: int | None
    event: str
    min_severity: str
    steps: list[RuleStep]
    active: bool
    created_by: str
    created_at: datetime


class ShiftCreate(Schema):
    """A weekly shift in the site's time zone; `ends` ≤ `starts` runs past midnight."""

    site_id: Id
    level: int = Field(1, ge=1, le=9, description="1 on-call technician, 2 shift lead, 3 manager.")
    user_id: Id
    weekday: int = Field(ge=0, le=6, description="0 = Monday.")
    starts: str = Field(pattern=HHMM)
    ends: str = Field(pattern=HHMM)


class ShiftPublic(PublicSchema):
    """A shift as stored."""

    id: int
    site_id: int
    level: int
    user_id: int
    weekday: int
    starts: str
    ends: str


class OverrideCreate(Schema):
    """Someone else holds a level between two instants (a swap, sick cover, holiday)."""

    site_id: Id
    level: int = Field(1, ge=1, le=9)
    user_id: Id
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    reason: str = Text(500)

    @model_validator(mode="after")
    def _ordered(self) -> OverrideCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class OverridePublic(PublicSchema):
    """An override as stored."""

    id: int
    site_id: int
    level: int
    user_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


class OnCallPerson(PublicSchema):
    """Someone on call."""

    id: int
    username: str
    display_name: str


class OnCallLevel(PublicSchema):
    """One level of the rota and who holds it."""

    level: int
    name: str
    users: list[OnCallPerson]


class OnCallNow(PublicSchema):
    """Who is on call at a site at an instant."""

    site_id: int
    at: datetime
    levels: list[OnCallLevel]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class NotificationSettingsBody(Schema):
    """A person's channels and addresses, language and quiet hours (all replaced at once)."""

    channels: list[UserChannel] = Field(["email"], max_length=3)
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
    telegram_chat_id: str | None = Field(None, max_length=64, pattern=r"^-?\d{1,20}$")
    zalo_user_id: str | None = Field(None, max_length=64, pattern=r"^\d{1,30}$")
    language: str = Field("en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    timezone: Annotated[str, AfterValidator(_zone)] = Field("UTC", max_length=64, pattern=NO_NUL)
    quiet_start: str | None = Field(None, pattern=HHMM)
    quiet_end: str | None = Field(None, pattern=HHMM)
    critical_overrides_quiet: bool = Field(True, description="Critical alerts ignore quiet hours.")


class NotificationSettingsPublic(NotificationSettingsBody):
    """A person's settings as stored."""

    user_id: int


class ChatChannelCreate(Schema):
    """A site's chat destination. Slack and Teams: `url` is the incoming webhook. Telegram:
    `token` is the bot token, `chat_id` the group; Zalo OA: `token` the OA access token,
    `chat_id` the follower's user id. `url` overrides their API address."""

    site_id: Id
    kind: ChatKind
    name: str = Text(200, 1)
    url: HttpUrl | None = None
    token: str = Field("", max_length=500, pattern=NO_NUL, description="Write-only.")
    chat_id: str = Field("", max_length=200, pattern=NO_NUL)
    active: bool = True

    @model_validator(mode="after")
    def _complete(self) -> ChatChannelCreate:
        if self.kind in ("slack", "teams") and self.url is None:
            raise ValueError(f"a {self.kind} channel needs its webhook url")
        if self.kind in ("telegram", "zalo") and not self.token:
            raise ValueError(f"a {self.kind} channel needs its token")
        return self


class ChatChannelPublic(PublicSchema):
    """A chat channel without its token."""

    id: int
    site_id: int
    kind: str
    name: str
    url: str
    chat_id: str
    active: bool
    created_at: datetime


class NotificationPublic(PublicSchema):
    """One message of the outbox and how its delivery stands."""

    id: int
    event: str
    site_id: int | None
    recipient: str
    channel: str
    address: str
    alert_id: int | None
    work_order_id: int | None
    severity: str | None
    subject: str
    status: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    group_id: int | None
    created_at: datetime
    delivered_at: datetime | None
