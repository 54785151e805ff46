"""Staff pages of work requests (the triage list and its actions) and the asset page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from api import i18n
from api.crud import get_or_404
from api.deps import SessionDep, StateDep
from api.i18n import N_
from api.models import (
    Alert,
    Asset,
    AssetStatus,
    NotificationSettings,
    PmPlan,
    PmSchedule,
    Sensor,
    Site,
    User,
    WorkOrder,
    WorkRequest,
    utcnow,
)
from api.pagination import PathId
from api.routes import labels as label_routes
from api.routes import requests as request_routes
from api.schemas.requests import Triage
from api.services import audit
from api.services import requests as svc
from api.services.work_orders import visible_to
from api.web.actions import Csrf, _outcome
from api.web.pages import Viewer
from api.web.render import page
from api.web.session import CREW, STAFF, UI, check_form, require, safe_next

router = APIRouter(include_in_schema=False)
ATTENTION = ("active_unacknowledged", "rtn_unacknowledged", "active_acknowledged")
CLOSED = ("verified", "cancelled")
# The asset page's chart windows (days); the first is the default.
ZOOMS = (1, 7, 30)


@router.get(f"{UI}/requests")
def requests_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """New requests to triage, then the last ones triaged."""
    require(principal, *STAFF)
    rows = session.execute(
        sa.select(WorkRequest, Site, Asset)
        .join(Site, Site.id == WorkRequest.site_id)
        .outerjoin(Asset, Asset.id == WorkRequest.asset_id)
        .order_by(WorkRequest.id.desc())
        .limit(200)
    ).all()
    new = [
        {"req": r, "site": s, "asset": a, "orders": svc.open_orders(session, r)}
        for r, s, a in rows
        if r.status == "new"
    ]
    done = [{"req": r, "site": s, "asset": a} for r, s, a in rows if r.status != "new"][:50]
    technicians = session.scalars(
        sa.select(User)
        .where(User.role == "technician", User.active.is_(True))
        .order_by(User.username)
    ).all()
    site_ids = {r.site_id for r, _site, a in rows if r.status == "new" and a is None}
    assets: dict[int, list[Asset]] = {}
    for asset in session.scalars(
        sa.select(Asset).where(Asset.site_id.in_(site_ids)).order_by(Asset.name)
    ):
        assets.setdefault(asset.site_id, []).append(asset)
    context = {"new": new, "done": done, "technicians": technicians, "assets": assets}
    return page(request, "requests.html", principal, context)


@router.post(f"{UI}/requests/{{request_id}}/triage")
def triage(  # noqa: PLR0917 (one form field per parameter)
    request_id: PathId,
    request: Request,
    state: StateDep,
    principal: Viewer,
    action: Annotated[str, Form(max_length=16)] = "",
    work_order_id: Annotated[str, Form(max_length=16)] = "",
    assignee_id: Annotated[str, Form(max_length=16)] = "",
    asset_id: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf: Csrf = None,
) -> RedirectResponse:
    """Accept, merge or decline one request (the API's own triage)."""
    check_form(request, csrf)
    require(principal, *STAFF)

    def work() -> object:
        body = Triage.model_validate(
            {
                "action": action,
                "work_order_id": int(work_order_id) if work_order_id.isdigit() else None,
                "assignee_id": int(assignee_id) if assignee_id.isdigit() else None,
                "asset_id": int(asset_id) if asset_id.isdigit() else None,
                "reason": reason.strip() or None,
            }
        )
        with state.sessions() as session:
            return request_routes.triage_request(
                request_id, body, session, state.settings, principal
            )

    done = {
        "accept": N_("Request accepted: a work order was opened."),
        "merge": N_("Request merged into the work order."),
        "decline": N_("Request declined."),
    }.get(action, N_("Request triaged."))
    return _outcome(f"{UI}/requests", work, done)


@router.get(f"{UI}/requests/{{request_id}}/photo")
def request_photo(request_id: PathId, session: SessionDep, principal: Viewer) -> Response:
    """A request's photo, for the triage list."""
    require(principal, *STAFF)
    return request_routes.get_request_photo(request_id, session, principal)


@router.get(f"{UI}/assets/{{asset_id}}/qr")
def asset_label(
    asset_id: PathId,
    state: StateDep,
    principal: Viewer,
    format: str = "svg",
) -> Response:
    """The asset's QR label for the browser (the API's own, with the session cookie)."""
    require(principal, *STAFF)
    kind: Literal["png", "svg"] = "png" if format == "png" else "svg"
    return label_routes.asset_qr(asset_id, state.sessions, state.settings, principal, kind)


@router.get(f"{UI}/sites/{{site_id}}/qr-labels")
def site_label_sheet(site_id: PathId, state: StateDep, principal: Viewer) -> Response:
    """The site's sheet of labels (PDF) for the browser."""
    require(principal, *STAFF)
    return label_routes.site_labels(site_id, state.sessions, state.settings, principal)


@router.get(f"{UI}/assets/{{asset_id}}")
def asset_page(
    asset_id: PathId, request: Request, session: SessionDep, principal: Viewer
) -> Response:
    """One asset: identity, health, open alerts and orders, history, PM plans, charts."""
    require(principal, *CREW)
    return page(request, "asset.html", principal, asset_view(session, asset_id, principal))


def asset_view(session: SessionDep, asset_id: int, principal: Any) -> dict[str, Any]:
    """What the asset page shows."""
    asset = get_or_404(session, Asset, asset_id)
    site = session.get(Site, asset.site_id)
    orders = session.scalars(
        sa.select(WorkOrder)
        .where(WorkOrder.asset_id == asset.id, visible_to(principal))
        .order_by(WorkOrder.id.desc())
        .limit(100)
    ).all()
    plans = session.execute(
        sa.select(PmPlan, PmSchedule)
        .join(PmSchedule, PmSchedule.plan_id == PmPlan.id)
        .where(PmSchedule.asset_id == asset.id, PmPlan.active.is_(True))
        .order_by(PmSchedule.next_due_at)
    ).all()
    now = utcnow()
    windows = [
        {
            "days": days,
            "url": f"{UI}/data/assets/{asset.id}/readings?start="
            f"{(now - timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        }
        for days in ZOOMS
    ]
    return {
        "asset": asset,
        "site": site,
        "tz": site.timezone if site else "UTC",
        "status": session.scalar(sa.select(AssetStatus).where(AssetStatus.asset_id == asset.id)),
        "alerts": session.scalars(
            sa.select(Alert)
            .where(Alert.asset_id == asset.id, Alert.state.in_(ATTENTION))
            .order_by(Alert.opened_at.desc())
        ).all(),
        "open_orders": [o for o in orders if o.state not in (*CLOSED, "completed")],
        "history": [o for o in orders if o.state in CLOSED or o.state == "completed"],
        "plans": plans,
        "sensors": session.scalars(
            sa.select(Sensor).where(Sensor.asset_id == asset.id).order_by(Sensor.name)
        ).all(),
        "windows": windows,
        "units": {
            s.name: s.unit
            for s in session.scalars(sa.select(Sensor).where(Sensor.asset_id == asset.id))
        },
        "requests": session.scalars(
            sa.select(WorkRequest)
            .where(WorkRequest.asset_id == asset.id, WorkRequest.status == "new")
            .order_by(WorkRequest.id.desc())
        ).all(),
    }


@router.post(f"{UI}/language")
def set_language(
    request: Request,
    state: StateDep,
    principal: Viewer,
    language: Annotated[str, Form(max_length=8)] = "",
    csrf: Csrf = None,
) -> RedirectResponse:
    """The viewer's own language (the one their notifications use too)."""
    check_form(request, csrf)
    require(principal, *CREW)
    back = safe_next(request.headers.get("referer", "").partition(str(request.base_url)[:-1])[2],
                     f"{UI}/")  # fmt: skip
    if language not in i18n.LANGUAGES or principal.user_id is None:
        return RedirectResponse(back, status_code=303)
    with state.sessions() as session:
        prefs = session.get(NotificationSettings, principal.user_id, with_for_update=True)
        if prefs is None:
            prefs = NotificationSettings(user_id=principal.user_id)
            session.add(prefs)
        prefs.language = language
        prefs.updated_at = utcnow()
        audit.record(session, principal.actor, "update", "notification_settings",
                     principal.user_id, {"language": language})  # fmt: skip
        session.commit()
    return RedirectResponse(back, status_code=303)
