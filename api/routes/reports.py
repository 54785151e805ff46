"""Reports for facilities: alarm KPIs, reliability and PM compliance of a site (by site code).

Thin: the figures come from the same services as `/alerts/kpis` and `/assets/{id}/reliability`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.deps import SessionDep, Staff
from api.errors import InvalidError, NotFoundError
from api.models import Asset, Site, WorkOrder, utcnow
from api.schemas.alerts import AlarmKpis
from api.schemas.common import CODE, UtcDatetime
from api.schemas.reports import PmCompliance, SiteReliability
from api.services.kpis import alarm_kpis, kpi_window
from api.services.reliability import reliability, reliability_window

router = APIRouter(tags=["reports"])

SiteCode = Annotated[
    str, Query(min_length=1, max_length=128, pattern=CODE, description="The site's code.")
]


def _site(session: Session, code: str) -> Site:
    site = session.scalar(sa.select(Site).where(Site.code == code))
    if site is None:
        raise NotFoundError(f"site {code!r} does not exist")
    return site


@router.get("/reports/alarm-kpis", summary="Alarm KPIs of a site")
def alarm_kpis_report(
    session: SessionDep,
    _: Staff,
    site: SiteCode,
    *,
    since: Annotated[UtcDatetime | None, Query(description="Default: until − 7 days.")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> AlarmKpis:
    """The figures of `/alerts/kpis` (rates, floods, chattering, standing) by site code."""
    found = _site(session, site)
    return alarm_kpis(session, found.id, *kpi_window(since, until))


@router.get("/reports/reliability", summary="MTBF and MTTR of every asset of a site")
def reliability_report(
    session: SessionDep,
    _: Staff,
    site: SiteCode,
    *,
    since: Annotated[UtcDatetime | None, Query(description="Default: a year before until.")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> SiteReliability:
    """`/assets/{id}/reliability` for each asset of the site (ordered by asset code)."""
    found = _site(session, site)
    start, end = reliability_window(since, until)
    assets = session.scalars(
        sa.select(Asset).where(Asset.site_id == found.id).order_by(Asset.code)
    ).all()
    return SiteReliability(
        site_id=found.id,
        site=found.code,
        start=start,
        end=end,
        assets=[reliability(session, asset, start, end) for asset in assets],
    )


@router.get("/reports/pm-compliance", summary="Preventive maintenance done on time")
def pm_compliance_report(
    session: SessionDep,
    _: Staff,
    site: SiteCode,
    *,
    since: Annotated[UtcDatetime | None, Query(description="Default: until − 90 days.")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> PmCompliance:
    """Preventive orders due in the window: done on time, late, skipped (cancelled), overdue
    (not done and past due), and still open but not yet due."""
    found = _site(session, site)
    end = until or utcnow()
    start = since or end - timedelta(days=90)
    if start >= end:
        raise InvalidError("'since' must be before 'until'", where="since")
    orders = session.execute(
        sa.select(WorkOrder.state, WorkOrder.due_at, WorkOrder.completed_at).where(
            WorkOrder.site_id == found.id,
            WorkOrder.work_type == "preventive",
            WorkOrder.due_at >= start,
            WorkOrder.due_at < end,
        )
    ).all()
    counts = dict.fromkeys(("on_time", "late", "skipped", "overdue", "open_not_due"), 0)
    now = utcnow()
    for state, due, completed in orders:
        assert due is not None  # filtered on in the query
        if state == "cancelled":
            counts["skipped"] += 1
        elif completed is not None:
            counts["on_time" if completed <= due else "late"] += 1
        else:
            counts["overdue" if due < now else "open_not_due"] += 1
    judged = counts["on_time"] + counts["late"] + counts["skipped"] + counts["overdue"]
    return PmCompliance(
        site_id=found.id,
        site=found.code,
        start=start,
        end=end,
        compliance=counts["on_time"] / judged if judged else None,
        **counts,
    )
