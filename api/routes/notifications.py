"""Notification rules, site chat channels, people's notification settings, and the outbox."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from api.crud import get_or_404
from api.deps import Admin, Crew, SessionDep, Staff
from api.errors import ConflictError, NotFoundError
from api.models import (
    ChatChannel,
    Notification,
    NotificationRule,
    NotificationSettings,
    Site,
    User,
    utcnow,
)
from api.pagination import Limit, Offset, PathId, QueryId, paginate
from api.schemas.common import Page
from api.schemas.notifications import (
    ChatChannelCreate,
    ChatChannelPublic,
    DeliveryState,
    NotificationPublic,
    NotificationRuleCreate,
    NotificationRulePublic,
    NotificationSettingsBody,
    NotificationSettingsPublic,
)
from api.security import Principal
from api.services import audit

router = APIRouter(tags=["notifications"])


def _rule_fields(body: NotificationRuleCreate) -> dict[str, object]:
    return body.model_dump(mode="json")


@router.post("/notification-rules", status_code=201, summary="Create a notification rule")
def create_rule(
    body: NotificationRuleCreate, session: SessionDep, principal: Staff
) -> NotificationRulePublic:
    """Who is told of which event, per site and severity; later steps of `alert.raised`
    escalate while the alert stays unacknowledged."""
    if body.site_id is not None:
        get_or_404(session, Site, body.site_id)
    rule = NotificationRule(**_rule_fields(body), created_by=principal.actor, created_at=utcnow())
    session.add(rule)
    session.flush()
    audit.record(
        session, principal.actor, "create", "notification_rule", rule.id, _rule_fields(body)
    )
    session.commit()
    return NotificationRulePublic.model_validate(rule)


@router.get("/notification-rules", summary="List notification rules")
def list_rules(
    session: SessionDep, _: Staff, *, limit: Limit = 50, offset: Offset = 0, site_id: QueryId = None
) -> Page[NotificationRulePublic]:
    """Rules, oldest first (optionally of one site, including those of every site)."""
    stmt = sa.select(NotificationRule).order_by(NotificationRule.id)
    if site_id is not None:
        stmt = stmt.where(
            sa.or_(NotificationRule.site_id == site_id, NotificationRule.site_id.is_(None))
        )
    return paginate(session, stmt, NotificationRulePublic, limit, offset)


@router.get("/notification-rules/{rule_id}", summary="Get a notification rule")
def get_rule(rule_id: PathId, session: SessionDep, _: Staff) -> NotificationRulePublic:
    """One rule."""
    return NotificationRulePublic.model_validate(get_or_404(session, NotificationRule, rule_id))


@router.put("/notification-rules/{rule_id}", summary="Replace a notification rule")
def replace_rule(
    rule_id: PathId, body: NotificationRuleCreate, session: SessionDep, principal: Staff
) -> NotificationRulePublic:
    """Replace every field; escalations in progress take the new steps from their next one."""
    rule = get_or_404(session, NotificationRule, rule_id, lock=True)
    if body.site_id is not None:
        get_or_404(session, Site, body.site_id)
    for name, value in _rule_fields(body).items():
        setattr(rule, name, value)
    audit.record(
        session, principal.actor, "update", "notification_rule", rule.id, _rule_fields(body)
    )
    session.commit()
    return NotificationRulePublic.model_validate(rule)


@router.delete("/notification-rules/{rule_id}", status_code=204, summary="Delete a rule")
def delete_rule(rule_id: PathId, session: SessionDep, principal: Staff) -> Response:
    """Delete a rule; its escalations in progress end with it."""
    rule = get_or_404(session, NotificationRule, rule_id, lock=True)
    session.delete(rule)
    audit.record(session, principal.actor, "delete", "notification_rule", rule_id)
    session.commit()
    return Response(status_code=204)


@router.post("/chat-channels", status_code=201, summary="Add a site chat channel")
def create_chat_channel(
    body: ChatChannelCreate, session: SessionDep, principal: Admin
) -> ChatChannelPublic:
    """A Slack or Teams webhook, a Telegram bot (and group), or a Zalo OA of a site; the
    token is write-only. Rules reach it as `chat:<id>`; people's own Telegram and Zalo
    messages go through the site's first active bot of that kind."""
    get_or_404(session, Site, body.site_id)
    fields = body.model_dump()
    fields["url"] = str(body.url) if body.url else ""
    channel = ChatChannel(**fields, created_at=utcnow())
    session.add(channel)
    session.flush()
    shown = {k: v for k, v in fields.items() if k != "token"}
    audit.record(session, principal.actor, "create", "chat_channel", channel.id, shown)
    session.commit()
    return ChatChannelPublic.model_validate(channel)


@router.get("/chat-channels", summary="List chat channels")
def list_chat_channels(
    session: SessionDep, _: Admin, *, limit: Limit = 50, offset: Offset = 0, site_id: QueryId = None
) -> Page[ChatChannelPublic]:
    """Chat channels (never their tokens)."""
    stmt = sa.select(ChatChannel).order_by(ChatChannel.id)
    if site_id is not None:
        stmt = stmt.where(ChatChannel.site_id == site_id)
    return paginate(session, stmt, ChatChannelPublic, limit, offset)


@router.delete("/chat-channels/{channel_id}", status_code=204, summary="Remove a chat channel")
def delete_chat_channel(channel_id: PathId, session: SessionDep, principal: Admin) -> Response:
    """Remove a chat channel (messages already queued for it are kept, and fail)."""
    channel = get_or_404(session, ChatChannel, channel_id, lock=True)
    session.delete(channel)
    audit.record(session, principal.actor, "delete", "chat_channel", channel_id)
    session.commit()
    return Response(status_code=204)


@router.get("/notifications", summary="The notification outbox (deliveries)")
def list_notifications(
    session: SessionDep,
    _: Admin,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    status: Annotated[DeliveryState | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=16, pattern=r"^[a-z]+$")] = None,
    alert_id: QueryId = None,
    user_id: QueryId = None,
) -> Page[NotificationPublic]:
    """Messages, newest first: pending (with the next try), held in a flood, grouped into a
    summary, delivered, or dead after the last attempt."""
    stmt = sa.select(Notification).order_by(Notification.id.desc())
    for column, value in (
        (Notification.status, status),
        (Notification.channel, channel),
        (Notification.alert_id, alert_id),
        (Notification.user_id, user_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, NotificationPublic, limit, offset)


@router.post("/notifications/{notification_id}/retry", summary="Send a dead message again")
def retry_notification(
    notification_id: PathId, session: SessionDep, principal: Admin
) -> NotificationPublic:
    """A dead message gets a fresh set of attempts, starting now (409 unless it is dead)."""
    row = get_or_404(session, Notification, notification_id, lock=True)
    if row.status != "dead":
        raise ConflictError(f"only a dead notification can be retried; this one is {row.status}")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    audit.record(session, principal.actor, "retry", "notification", row.id)
    session.commit()
    return NotificationPublic.model_validate(row)


def _settings_of(session: SessionDep, user_id: int) -> NotificationSettingsPublic:
    prefs = session.get(NotificationSettings, user_id)
    if prefs is None:
        return NotificationSettingsPublic(user_id=user_id)
    return NotificationSettingsPublic.model_validate(prefs)


def _put_settings(
    session: SessionDep, user_id: int, body: NotificationSettingsBody, actor: str
) -> NotificationSettingsPublic:
    prefs = session.get(NotificationSettings, user_id, with_for_update=True)
    if prefs is None:
        prefs = NotificationSettings(user_id=user_id)
        session.add(prefs)
    for name, value in body.model_dump().items():
        setattr(prefs, name, value)
    prefs.updated_at = utcnow()
    audit.record(session, actor, "update", "notification_settings", user_id, body.model_dump())
    session.commit()
    return NotificationSettingsPublic.model_validate(prefs)


def _own(principal: Principal) -> int:
    if principal.user_id is None:
        raise NotFoundError("this token belongs to no user, so it has no notification settings")
    return principal.user_id


@router.get("/users/me/notification-settings", summary="My notification settings")
def get_my_settings(session: SessionDep, principal: Crew) -> NotificationSettingsPublic:
    """Channels, addresses, language and quiet hours of the caller."""
    return _settings_of(session, _own(principal))


@router.put("/users/me/notification-settings", summary="Set my notification settings")
def put_my_settings(
    body: NotificationSettingsBody, session: SessionDep, principal: Crew
) -> NotificationSettingsPublic:
    """Replace the caller's channels, addresses, language and quiet hours."""
    return _put_settings(session, _own(principal), body, principal.actor)


@router.get("/users/{user_id}/notification-settings", summary="A user's notification settings")
def get_user_settings(user_id: PathId, session: SessionDep, _: Admin) -> NotificationSettingsPublic:
    """Channels, addresses, language and quiet hours of a user."""
    get_or_404(session, User, user_id)
    return _settings_of(session, user_id)


@router.put("/users/{user_id}/notification-settings", summary="Set a user's notification settings")
def put_user_settings(
    user_id: PathId, body: NotificationSettingsBody, session: SessionDep, principal: Admin
) -> NotificationSettingsPublic:
    """Replace a user's channels, addresses, language and quiet hours."""
    get_or_404(session, User, user_id)
    return _put_settings(session, user_id, body, principal.actor)
