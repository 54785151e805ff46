"""The on-call rota: weekly shifts per site and level, in the site's time zone, with overrides.

Levels are the escalation chain: 1 = on-call technician, 2 = shift lead, 3 = facilities
manager (a site may use more). An override that covers the instant wins over the shifts.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import OnCallOverride, OnCallShift, Site, User

LEVEL_NAMES = {1: "on-call technician", 2: "shift lead", 3: "facilities manager"}


def zone(name: str | None) -> ZoneInfo:
    """The time zone of that name (UTC when unknown)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_hhmm(value: str) -> time:
    """'HH:MM' as a time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def shift_covers(shift: OnCallShift, local: datetime) -> bool:
    """Whether a weekly shift covers a local (site time) instant; overnight shifts included."""
    start, end = parse_hhmm(shift.starts), parse_hhmm(shift.ends)
    now_t, day = local.time().replace(second=0, microsecond=0), local.weekday()
    if start < end:
        return day == shift.weekday and start <= now_t < end
    # Overnight (or all day when ends == starts): from start on weekday to end the next day.
    return (day == shift.weekday and now_t >= start) or (
        day == (shift.weekday + 1) % 7 and now_t < end
    )


def on_call(session: Session, site_id: int, level: int, at: datetime) -> list[User]:
    """Who holds a level of the site's rota at an instant (active users only)."""
    override_ids = session.scalars(
        sa.select(OnCallOverride.user_id)
        .where(
            OnCallOverride.site_id == site_id,
            OnCallOverride.level == level,
            OnCallOverride.starts_at <= at,
            OnCallOverride.ends_at > at,
        )
        .order_by(OnCallOverride.id.desc())
    ).all()
    if override_ids:
        ids = [override_ids[0]]  # the latest override is the one that counts
    else:
        site = session.get(Site, site_id)
        local = at.astimezone(zone(site.timezone if site else None))
        shifts = session.scalars(
            sa.select(OnCallShift).where(OnCallShift.site_id == site_id, OnCallShift.level == level)
        ).all()
        ids = [s.user_id for s in shifts if shift_covers(s, local)]
    if not ids:
        return []
    users = session.scalars(
        sa.select(User).where(User.id.in_(ids), User.active.is_(True)).order_by(User.id)
    ).all()
    return list(users)


def now_on_call(session: Session, site_id: int, at: datetime) -> dict[int, list[User]]:
    """Every level of the site's rota (those with shifts or overrides) → who holds it now."""
    levels = set(
        session.scalars(sa.select(OnCallShift.level).where(OnCallShift.site_id == site_id))
    )
    levels |= set(
        session.scalars(
            sa.select(OnCallOverride.level).where(
                OnCallOverride.site_id == site_id, OnCallOverride.ends_at > at
            )
        )
    )
    return {level: on_call(session, site_id, level, at) for level in sorted(levels)}


def quiet_until(
    start: str | None, end: str | None, tz: str | None, at: datetime
) -> datetime | None:
    """When quiet hours that cover `at` end (UTC), or None outside them (or without them)."""
    if not start or not end or start == end:
        return None
    local = at.astimezone(zone(tz))
    s, e = parse_hhmm(start), parse_hhmm(end)
    t = local.time()
    inside = s <= t < e if s < e else (t >= s or t < e)
    if not inside:
        return None
    ends = local.replace(hour=e.hour, minute=e.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(at.tzinfo)
