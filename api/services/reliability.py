"""Reliability figures per asset: MTBF and MTTR from alert onsets and work-order times."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import InvalidError
from api.models import Asset, WorkOrder, WorkOrderEvidence, utcnow
from api.schemas.work_orders import Reliability

HOUR_S = 3600.0


def reliability_window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The window of the figures: end defaults to now, start to a year before."""
    until = end or utcnow()
    since = start or until - timedelta(days=365)
    if since >= until:
        raise InvalidError("start must be before end", where="start")
    return since, until


def reliability(session: Session, asset: Asset, start: datetime, end: datetime) -> Reliability:
    """MTBF = operating time / confirmed failures; MTTR = mean(onset → completed).

    A failure is a work order completed as 'fixed' in the window (no-fault-found orders are not
    failures). Its onset is the earliest alert evidence attached to it (the moment the machine
    started to fail, not when someone noticed), else the order's creation.
    """
    first_evidence = (
        sa.select(sa.func.min(WorkOrderEvidence.at))
        .where(WorkOrderEvidence.work_order_id == WorkOrder.id)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(WorkOrder.created_at, WorkOrder.completed_at, first_evidence)
        .where(
            WorkOrder.asset_id == asset.id,
            WorkOrder.resolution == "fixed",
            WorkOrder.completed_at >= start,
            WorkOrder.completed_at < end,
        )
        .order_by(WorkOrder.completed_at)
    ).all()
    repairs = []
    for created_at, completed_at, onset in rows:
        assert completed_at is not None  # filtered on in the query
        begin = min(onset or created_at, created_at)
        repairs.append(max(0.0, (completed_at - begin).total_seconds()))
    failures = len(repairs)
    # The asset cannot have been operating before it was registered.
    observed_from = max(start, asset.created_at)
    window = max(0.0, (end - observed_from).total_seconds())
    operating = max(0.0, window - sum(repairs))
    return Reliability(
        asset_id=asset.id,
        start=start,
        end=end,
        failures=failures,
        mtbf_hours=operating / failures / HOUR_S if failures else None,
        mttr_hours=sum(repairs) / failures / HOUR_S if failures else None,
    )
