"""Alerts: the analytics service's posts, operator actions, history, outcomes and KPIs."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response

from api.crud import get_or_404
from api.db import run_in_transaction
from api.deps import Crew, Reader, Service, SessionDep, SessionsDep, SettingsDep, Staff, StateDep
from api.listing import NOT_MODIFIED, Cursor, CursorPage, list_response
from api.models import Alert, AlertEvent, Asset, Site, WorkOrder, utcnow
from api.pagination import Limit, Offset, PathId, QueryId, QueryText, paginate
from api.schemas.alerts import (
    AlarmKpis,
    AlertAction,
    AlertEventPublic,
    AlertKind,
    AlertPost,
    AlertPublic,
    AlertState,
    OutcomePublic,
)
from api.schemas.common import Page, UtcDatetime
from api.services import alerts as svc
from api.services.kpis import alarm_kpis, kpi_window

router = APIRouter(tags=["alerts"])


@router.post(
    "/alerts",
    summary="Post an alert condition (analytics service)",
    responses={201: {"model": AlertPublic, "description": "A new alert was created."}},
)
def post_alert(
    body: AlertPost,
    response: Response,
    *,
    sessions: SessionsDep,
    state: StateDep,
    principal: Service,
) -> AlertPublic:
    """Upsert the alert of (asset, kind, failure mode); recurrences update it, never duplicate.

    201 when the alert is new, 200 when an existing one was updated. An active condition on a
    critical enough asset opens (or adds evidence to) the one open work order of that asset and
    failure mode, per the configured policy.
    """
    now = utcnow()
    alert, created = run_in_transaction(
        sessions, lambda s: svc.ingest(s, body, state.settings.policy, principal.actor, now)
    )
    state.metrics.alerts_posted.labels("created" if created else "updated").inc()
    response.status_code = 201 if created else 200
    return AlertPublic.model_validate(alert)


@router.get(
    "/alerts",
    summary="List alerts",
    response_model=CursorPage[AlertPublic],
    responses=NOT_MODIFIED,
)
def list_alerts(
    request: Request,
    session: SessionDep,
    principal: Reader,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
    site_id: QueryId = None,
    asset_id: QueryId = None,
    state: Annotated[AlertState | None, Query()] = None,
    kind: Annotated[AlertKind | None, Query()] = None,
    failure_mode: QueryText = None,
    active: Annotated[bool | None, Query(description="Only (in)active conditions.")] = None,
) -> Response:
    """Alerts, most recently changed first, filtered by site, asset, state, kind or mode.

    `ETag` / `If-None-Match` (304 while nothing changed); `next_cursor` continues after the
    page (then without `total`)."""
    stmt = sa.select(Alert)
    for column, value in (
        (Alert.site_id, site_id),
        (Alert.asset_id, asset_id),
        (Alert.state, state),
        (Alert.kind, kind),
        (Alert.failure_mode, failure_mode),
        (Alert.condition_active, active),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return list_response(
        request, session, principal, stmt, AlertPublic, table=Alert.__table__,
        keys=[Alert.updated_at, Alert.id], limit=limit, offset=offset, cursor=cursor,
    )  # fmt: skip


@router.get("/alerts/outcomes", summary="How alerts ended (analytics labels)")
def outcomes(
    session: SessionDep,
    _: Service,
    since: Annotated[UtcDatetime, Query(description="Alerts or orders changed since then.")],
    *,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[OutcomePublic]:
    """Alerts changed since `since`, with the outcome of their work order.

    `confirmed_fault`: the order was completed as fixed; `no_fault_found`: a technician found
    nothing; null: no order, or not completed yet.
    """
    stmt = (
        sa.select(
            Alert,
            Site.code,
            Asset.code,
            WorkOrder.state,
            WorkOrder.resolution,
            WorkOrder.completed_at,
        )
        .join(Site, Site.id == Alert.site_id)
        .join(Asset, Asset.id == Alert.asset_id)
        .outerjoin(WorkOrder, WorkOrder.id == Alert.work_order_id)
        .where(sa.or_(Alert.updated_at >= since, WorkOrder.updated_at >= since))
        .order_by(Alert.id)
        .limit(limit)
    )
    result = []
    for alert, site, asset, wo_state, resolution, completed in session.execute(stmt).all():
        done = wo_state in ("completed", "verified")
        outcome = None
        if done and resolution == "fixed":
            outcome = "confirmed_fault"
        elif done and resolution == "no_fault_found":
            outcome = "no_fault_found"
        result.append(
            OutcomePublic(
                alert_id=alert.id,
                site=site,
                asset=asset,
                kind=alert.kind,
                failure_mode=alert.failure_mode,
                opened_at=alert.opened_at,
                cleared_at=alert.cleared_at,
                outcome=outcome,
                work_order_id=alert.work_order_id,
                completed_at=completed if done else None,
            )
        )
    return result


@router.get("/alerts/kpis", summary="Alarm KPIs of a site")
def kpis(
    session: SessionDep,
    _: Staff,
    site_id: Annotated[int, Query(ge=1, le=2_147_483_647)],
    *,
    start: Annotated[UtcDatetime | None, Query(description="Default: end − 7 days.")] = None,
    end: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> AlarmKpis:
    """Activations per day and per 10 minutes, flood periods, chattering and standing alerts."""
    get_or_404(session, Site, site_id)
    return alarm_kpis(session, site_id, *kpi_window(start, end))


@router.get("/alerts/{alert_id}", summary="Get an alert")
def get_alert(alert_id: PathId, session: SessionDep, _: Reader) -> AlertPublic:
    """One alert."""
    return AlertPublic.model_validate(get_or_404(session, Alert, alert_id))


@router.get("/alerts/{alert_id}/history", summary="An alert's history")
def alert_history(
    alert_id: PathId, session: SessionDep, _: Reader, *, limit: Limit = 100, offset: Offset = 0
) -> Page[AlertEventPublic]:
    """Occurrences, returns to normal, acknowledgements and shelving, with who and why."""
    get_or_404(session, Alert, alert_id)
    stmt = sa.select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    return paginate(session, stmt, AlertEventPublic, limit, offset)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert")
def acknowledge(alert_id: PathId, sessions: SessionsDep, principal: Crew) -> AlertPublic:
    """Active → acknowledged; returned-to-normal → cleared. 409 if nothing to acknowledge."""

    def work(session: SessionDep) -> Alert:
        alert = get_or_404(session, Alert, alert_id, lock=True)
        svc.acknowledge(session, alert, principal, utcnow())
        return alert

    return AlertPublic.model_validate(run_in_transaction(sessions, work))


@router.post("/alerts/{alert_id}/actions", summary="Shelve, suppress or take out of service")
def alert_action(
    alert_id: PathId,
    body: AlertAction,
    sessions: SessionsDep,
    settings: SettingsDep,
    principal: Staff,
) -> AlertPublic:
    """Shelve (until a time; it re-alarms then), suppress by design, remove from service, or
    undo any of these; each is recorded with who, when and why. 409 from a wrong state."""

    def work(session: SessionDep) -> Alert:
        alert = get_or_404(session, Alert, alert_id, lock=True)
        svc.act(session, alert, body, principal=principal, policy=settings.policy, now=utcnow())
        return alert

    return AlertPublic.model_validate(run_in_transaction(sessions, work))
