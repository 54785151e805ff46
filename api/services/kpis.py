"""Alarm-system KPIs of a site (ISA-18.2 / EEMUA 191): rates, floods, chattering, standing."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import InvalidError
from api.models import Alert, AlertEvent, utcnow
from api.schemas.alerts import AlarmKpis, FloodPeriod

WINDOW = timedelta(minutes=10)
# EEMUA 191 / ISA-18.2: more than 10 new alarms in 10 minutes per operator is a flood.
FLOOD_THRESHOLD = 10
# A chattering alarm returns repeatedly in a short time: 3 or more activations within 60 s.
CHATTER_COUNT, CHATTER_SPAN = 3, timedelta(seconds=60)
# An alarm active for more than 24 hours is "standing": it no longer tells anyone anything.
STANDING_AFTER = timedelta(hours=24)


def kpi_window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The KPI window: end defaults to now, start to a week before; at most a year long."""
    until = end or utcnow()
    since = start or until - timedelta(days=7)
    if not timedelta(0) < until - since <= timedelta(days=366):
        raise InvalidError("the window must be positive and at most a year long", where="start")
    return since, until


def alarm_kpis(session: Session, site_id: int, start: datetime, end: datetime) -> AlarmKpis:
    """Figures over [start, end) from the alert history of one site."""
    rows = session.execute(
        sa.select(AlertEvent.alert_id, AlertEvent.at)
        .where(
            AlertEvent.site_id == site_id,
            AlertEvent.event == "activated",
            AlertEvent.at >= start,
            AlertEvent.at < end,
        )
        .order_by(AlertEvent.at)
    ).all()
    buckets: Counter[int] = Counter()
    per_alert: dict[int, list[datetime]] = defaultdict(list)
    for alert_id, at in rows:
        buckets[int((at - start) / WINDOW)] += 1
        per_alert[alert_id].append(at)
    span = end - start
    windows = max(1, int(span / WINDOW) + (1 if span % WINDOW else 0))
    floods = [
        FloodPeriod(start=start + WINDOW * index, activations=count)
        for index, count in sorted(buckets.items())
        if count > FLOOD_THRESHOLD
    ]
    chattering = sorted(
        alert_id
        for alert_id, times in per_alert.items()
        if any(
            times[i + CHATTER_COUNT - 1] - times[i] <= CHATTER_SPAN
            for i in range(len(times) - CHATTER_COUNT + 1)
        )
    )
    standing = session.scalars(
        sa.select(Alert.id)
        .where(
            Alert.site_id == site_id,
            Alert.condition_active.is_(True),
            Alert.opened_at <= end - STANDING_AFTER,
        )
        .order_by(Alert.id)
    ).all()
    days = max(span / timedelta(days=1), 1e-9)
    return AlarmKpis(
        site_id=site_id,
        start=start,
        end=end,
        activations=len(rows),
        per_day=len(rows) / days,
        per_10_minutes_avg=len(rows) / windows,
        per_10_minutes_max=max(buckets.values(), default=0),
        flood_periods=floods,
        flood_time_percent=100.0 * len(floods) / windows,
        chattering_alerts=chattering,
        standing_alerts=list(standing),
    )
