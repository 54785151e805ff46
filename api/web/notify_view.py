"""The dashboard's notification panel: who is on call now, what was sent, failing channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import Notification, Site
from api.services.notify import rota
from api.services.notify.outbox import dead_by_channel
from api.services.notify.worker import Health


@dataclass
class OnCallSite:
    """One site's rota right now: (level name, people) per level."""

    site: str
    levels: list[tuple[str, list[str]]]


@dataclass
class NotifyPanel:
    """What the fleet page shows about notifications."""

    on_call: list[OnCallSite] = field(default_factory=list)
    sent_24h: int = 0
    pending: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)
    recent: list[Notification] = field(default_factory=list)


def panel(session: Session, health: Health, now: datetime) -> NotifyPanel:
    """The panel's contents."""
    result = NotifyPanel(dead=dead_by_channel(session), failing=dict(health.down))
    for site in session.scalars(sa.select(Site).order_by(Site.code)):
        levels = rota.now_on_call(session, site.id, now)
        if levels:
            named = [
                (
                    rota.LEVEL_NAMES.get(level, f"level {level}"),
                    [u.display_name or u.username for u in users],
                )
                for level, users in levels.items()
            ]
            result.on_call.append(OnCallSite(site.code, named))
    counts = dict(
        session.execute(
            sa.select(Notification.status, sa.func.count())
            .where(
                sa.or_(
                    Notification.status == "pending",
                    Notification.delivered_at >= now - timedelta(hours=24),
                )
            )
            .group_by(Notification.status)
        ).all()
    )
    result.sent_24h, result.pending = counts.get("delivered", 0), counts.get("pending", 0)
    result.recent = list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.status.in_(("delivered", "dead")))
            .order_by(Notification.id.desc())
            .limit(8)
        )
    )
    return result
