"""Who a rule's target means at an instant, and how each of them is reached."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import ChatChannel, NotificationSettings, User
from api.services.notify import rota

# A target of a rule step: the rota (on_call:<level>), one user, everyone of a role, the work
# order's assignee, or a site chat channel.
TARGET = re.compile(
    r"^(on_call:[1-9]|user:\d{1,10}|role:(admin|facilities|technician)|assignee|chat:\d{1,10})$"
)
USER_CHANNELS = ("email", "telegram", "zalo")


@dataclass(frozen=True)
class Address:
    """One way to reach a recipient: a channel, an address, and the chat channel that carries it."""

    channel: str
    address: str
    chat: ChatChannel | None = None


@dataclass
class Recipient:
    """A person (with preferences) or a site chat channel, and how to reach them."""

    key: str
    label: str
    user: User | None = None
    prefs: NotificationSettings | None = None
    addresses: list[Address] = field(default_factory=list)

    @property
    def language(self) -> str:
        """The language messages to them are written in."""
        return self.prefs.language if self.prefs else "en"


def _site_bot(session: Session, site_id: int | None, kind: str) -> ChatChannel | None:
    if site_id is None:
        return None
    return session.scalar(
        sa.select(ChatChannel)
        .where(ChatChannel.site_id == site_id, ChatChannel.kind == kind, ChatChannel.active)
        .order_by(ChatChannel.id)
        .limit(1)
    )


def for_user(session: Session, user: User, site_id: int | None) -> Recipient:
    """A user as a recipient: their channels (e-mail by default) with the addresses they gave."""
    prefs = session.get(NotificationSettings, user.id)
    recipient = Recipient(f"user:{user.id}", f"user:{user.username}", user, prefs)
    channels = prefs.channels if prefs and prefs.channels else ["email"]
    for channel in channels:
        if channel == "email" and prefs and prefs.email:
            recipient.addresses.append(Address("email", prefs.email))
        elif channel == "telegram" and prefs and prefs.telegram_chat_id:
            bot = _site_bot(session, site_id, "telegram")
            if bot is not None:
                recipient.addresses.append(Address("telegram", prefs.telegram_chat_id, bot))
        elif channel == "zalo" and prefs and prefs.zalo_user_id:
            oa = _site_bot(session, site_id, "zalo")
            if oa is not None:
                recipient.addresses.append(Address("zalo", prefs.zalo_user_id, oa))
    return recipient


def resolve(
    session: Session,
    targets: list[str],
    *,
    site_id: int | None,
    assignee_id: int | None,
    at: datetime,
) -> list[Recipient]:
    """The distinct recipients of a step's targets, in order."""
    found: dict[str, Recipient] = {}
    for target in targets:
        kind, _, value = target.partition(":")
        users: list[User] = []
        if kind == "on_call" and site_id is not None:
            users = rota.on_call(session, site_id, int(value), at)
        elif kind == "user":
            user = session.get(User, int(value))
            users = [user] if user is not None and user.active else []
        elif kind == "role":
            users = list(
                session.scalars(
                    sa.select(User).where(User.role == value, User.active).order_by(User.id)
                )
            )
        elif kind == "assignee" and assignee_id is not None:
            user = session.get(User, assignee_id)
            users = [user] if user is not None and user.active else []
        elif kind == "chat":
            chat = session.get(ChatChannel, int(value))
            if chat is not None and chat.active and chat.site_id == site_id:
                key = f"chat:{chat.id}"
                found.setdefault(
                    key,
                    Recipient(
                        key, f"chat:{chat.name}", addresses=[Address(chat.kind, chat.chat_id, chat)]
                    ),
                )
        for user in users:
            found.setdefault(f"user:{user.id}", for_user(session, user, site_id))
    return list(found.values())
