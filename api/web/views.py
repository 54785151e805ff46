"""What the pages show: read-only queries that shape SQL rows into view dictionaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models import (
    Alert,
    AlertEvent,
    Asset,
    AssetStatus,
    PmPlan,
    Sensor,
    Site,
    User,
    WorkOrder,
    WorkOrderEvidence,
)
from api.routes import pm as pm_routes
from api.schemas.common import SEVERITY_RANK
from api.security import Principal
from api.services.work_orders import chart_url, visible_to

# Alerts that still ask something of an operator, most urgent state first.
ATTENTION_STATES = ("active_unacknowledged", "rtn_unacknowledged", "active_acknowledged")
PARKED_STATES = ("shelved", "suppressed", "out_of_service")
CLOSED_ORDERS = ("verified", "cancelled")
# The board's columns; `reopened` sits with the work still to be picked up.
BOARD_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("to_do", "To do", ("open", "reopened")),
    ("assigned", "Assigned", ("assigned",)),
    ("in_progress", "In progress", ("in_progress",)),
    ("on_hold", "On hold", ("on_hold",)),
    ("completed", "Completed", ("completed",)),
)


@dataclass
class FleetRow:
    """One asset on the fleet overview."""

    asset: Asset
    site: str
    status: AssetStatus | None
    active_alerts: int
    age_s: float | None


@dataclass
class Fleet:
    """The fleet overview: every asset and the counts at the top."""

    rows: list[FleetRow] = field(default_factory=list)
    in_alarm: int = 0
    instrument: int = 0
    open_orders: int = 0
    active_alerts: int = 0


def fleet(session: Session, now: datetime) -> Fleet:
    """Every asset with its latest status, worst first (alarm, instrument, stale, ...)."""
    alerting = dict(
        session.execute(
            sa.select(Alert.asset_id, sa.func.count())
            .where(Alert.state.in_(ATTENTION_STATES))
            .group_by(Alert.asset_id)
        ).all()
    )
    rows = session.execute(
        sa.select(Asset, Site.code, AssetStatus)
        .join(Site, Site.id == Asset.site_id)
        .outerjoin(AssetStatus, AssetStatus.asset_id == Asset.id)
        .order_by(Site.code, Asset.code)
    ).all()
    result = Fleet()
    for asset, site, status in rows:
        age = (now - status.observed_at).total_seconds() if status else None
        result.rows.append(FleetRow(asset, site, status, alerting.get(asset.id, 0), age))
    order = {"alarm": 0, "instrument": 1, "stale": 2, "learning": 4, "normal": 5}
    result.rows.sort(
        key=lambda r: (
            order.get(r.status.state, 3) if r.status else 3,
            r.status.health if r.status and r.status.health is not None else 101,
        )
    )
    result.in_alarm = sum(1 for r in result.rows if r.status and r.status.state == "alarm")
    result.instrument = sum(1 for r in result.rows if r.status and r.status.state == "instrument")
    result.active_alerts = sum(alerting.values())
    result.open_orders = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(WorkOrder)
            .where(WorkOrder.state.not_in((*CLOSED_ORDERS, "completed")))
        )
        or 0
    )
    return result


def asset_count(session: Session) -> int:
    """How many assets there are (for the empty states)."""
    return session.scalar(sa.select(sa.func.count()).select_from(Asset)) or 0


def alerts(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alerts needing attention (by severity, newest first), and shelved/suppressed ones."""
    rows = session.execute(
        sa.select(Alert, Asset, Site.code)
        .join(Asset, Asset.id == Alert.asset_id)
        .join(Site, Site.id == Alert.site_id)
        .where(Alert.state.in_((*ATTENTION_STATES, *PARKED_STATES)))
    ).all()
    ordered = sorted(
        rows,
        key=lambda row: (
            ATTENTION_STATES.index(row[0].state) if row[0].state in ATTENTION_STATES else 9,
            -SEVERITY_RANK.get(row[0].severity, 0),
            -row[0].last_detected_at.timestamp(),
        ),
    )
    attention = [
        {"alert": a, "asset": b, "site": c} for a, b, c in ordered if a.state in ATTENTION_STATES
    ]
    parked = [
        {"alert": a, "asset": b, "site": c} for a, b, c in ordered if a.state in PARKED_STATES
    ]
    return attention, parked


def alert_detail(session: Session, alert: Alert, principal: Principal) -> dict[str, Any]:
    """An alert with its asset, site, sensors, history, work order and chart link.

    The work order shows only if the viewer may see it (the work-order API's rule).
    """
    asset = session.get(Asset, alert.asset_id)
    site = session.get(Site, alert.site_id)
    history = session.scalars(
        sa.select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.id.desc())
    ).all()
    order = (
        session.scalar(
            sa.select(WorkOrder).where(WorkOrder.id == alert.work_order_id, visible_to(principal))
        )
        if alert.work_order_id
        else None
    )
    return {
        "alert": alert,
        "asset": asset,
        "site": site.code if site else "",
        "history": history,
        "order": order,
        "units": units(session, alert.asset_id),
        "chart_url": ui_chart_url(chart_url(alert, alert.opened_at)),
    }


def units(session: Session, asset_id: int) -> dict[str, str]:
    """Sensor name → unit of an asset."""
    return dict(
        session.execute(
            sa.select(Sensor.name, Sensor.unit).where(Sensor.asset_id == asset_id)
        ).all()
    )


def ui_chart_url(api_url: str) -> str:
    """The UI's cookie-authenticated twin of a readings URL of the API."""
    return api_url.replace("/api/v1/", "/ui/data/", 1)


def _order_views(session: Session, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
    rows = session.execute(
        stmt.add_columns(Asset, Site.code, User.username)
        .join(Asset, Asset.id == WorkOrder.asset_id)
        .join(Site, Site.id == WorkOrder.site_id)
        .outerjoin(User, User.id == WorkOrder.assignee_id)
        .order_by(WorkOrder.priority, WorkOrder.due_at, WorkOrder.id)
    ).all()
    return [{"order": o, "asset": a, "site": s, "assignee": u} for o, a, s, u in rows]


def board(session: Session, principal: Principal) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Work orders not yet closed that the viewer may see, in the board's columns.

    Visibility is `visible_to`, the rule of `GET /api/v1/work-orders` itself: technicians see
    their own and unassigned orders, never other technicians'.
    """
    stmt = sa.select(WorkOrder).where(WorkOrder.state.not_in(CLOSED_ORDERS), visible_to(principal))
    views = _order_views(session, stmt)
    return [
        (key, title, [v for v in views if v["order"].state in states])
        for key, title, states in BOARD_COLUMNS
    ]


def my_orders(session: Session, user_id: int | None) -> dict[str, list[dict[str, Any]]]:
    """A technician's open orders, those they finished lately, and unassigned ones to claim."""
    mine = _order_views(
        session,
        sa.select(WorkOrder).where(
            WorkOrder.assignee_id == user_id, WorkOrder.state.not_in(CLOSED_ORDERS)
        ),
    )
    claimable = _order_views(
        session,
        sa.select(WorkOrder).where(
            WorkOrder.assignee_id.is_(None), WorkOrder.state.in_(("open", "reopened"))
        ),
    )
    return {
        "active": [v for v in mine if v["order"].state != "completed"],
        "done": [v for v in mine if v["order"].state == "completed"],
        "claimable": claimable,
    }


def order_detail(session: Session, order: WorkOrder) -> dict[str, Any]:
    """A work order with its asset, assignee, alert and the evidence charts."""
    evidence = session.scalars(
        sa.select(WorkOrderEvidence)
        .where(WorkOrderEvidence.work_order_id == order.id)
        .order_by(WorkOrderEvidence.id.desc())
    ).all()
    assignee = session.get(User, order.assignee_id) if order.assignee_id else None
    return {
        "order": order,
        "asset": session.get(Asset, order.asset_id),
        "assignee": assignee,
        "alert": session.get(Alert, order.alert_id) if order.alert_id else None,
        "evidence": evidence,
        "chart_url": ui_chart_url(evidence[0].chart_url) if evidence else None,
        "units": units(session, order.asset_id),
    }


def sites(session: Session) -> list[Site]:
    """Every site, by code."""
    return list(session.scalars(sa.select(Site).order_by(Site.code)).all())


def maintenance(session: Session, principal: Principal) -> dict[str, Any]:
    """The maintenance page: the 30-day forecast (as ``GET /api/v1/pm-forecast``) and plans."""
    due = pm_routes.forecast(session, principal, days=30)
    assets = {a.id: a for a in session.scalars(sa.select(Asset))}
    sites = {s.id: s for s in session.scalars(sa.select(Site))}
    plans = list(session.scalars(sa.select(PmPlan).order_by(PmPlan.site_id, PmPlan.title)))
    types = sorted({(a.site_id, a.asset_type) for a in assets.values()})
    return {
        "forecast": due,
        "calendar": _calendar(due.items, due.until),
        "assets": assets,
        "sites": sites,
        "plans": plans,
        "types": types,
        "users": {u.id: u for u in session.scalars(sa.select(User))},
    }


def _calendar(items: list[Any], until: datetime) -> list[list[tuple[date, list[Any]]]]:
    """Weeks (Monday first) from this week to ``until``, each day with what falls due on it."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=today.weekday())
    by_day: dict[date, list[Any]] = {}
    for item in items:
        if item.due_at is not None:
            by_day.setdefault(max(item.due_at.date(), today), []).append(item)
    weeks = []
    day = start
    while day <= until.date():
        weeks.append(
            [(day + timedelta(days=k), by_day.get(day + timedelta(days=k), [])) for k in range(7)]
        )
        day += timedelta(days=7)
    return weeks
