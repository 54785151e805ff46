"""Reports for facilities: alarm KPIs and reliability of a site (by site code).

Thin: the figures come from the same services as `/alerts/kpis` and `/assets/{id}/reliability`.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.deps import SessionDep, Staff
from api.errors import NotFoundError
from api.models import Asset, Site
from api.schemas.alerts import AlarmKpis
from api.schemas.common import CODE, UtcDatetime
from api.schemas.reports import SiteReliability
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
