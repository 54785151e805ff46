"""The UI's pages (GET): fleet, alerts, an alert, KPIs, maintenance, the work-order board, my
work orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException

from api.crud import get_or_404
from api.deps import READ_METHODS, ReadSessionDep, SessionDep, StateDep, cached_principal
from api.errors import ApiError
from api.models import Alert, WorkOrder, utcnow
from api.pagination import PathId
from api.routes import readings
from api.routes.work_orders import etag, visible_order
from api.schemas.common import UtcDatetime
from api.security import Principal
from api.services.kpis import alarm_kpis, kpi_window
from api.web import notify_view, views
from api.web.render import not_modified, page, remember_fragment, shared_fragment
from api.web.session import CREW, STAFF, UI, home_of, principal_of, require, session_token

router = APIRouter(include_in_schema=False)


async def _principal(request: Request, state: StateDep, session: ReadSessionDep) -> Principal:
    # A session cookie looked up in the last seconds needs no thread (api.deps.get_principal).
    token = session_token(request)
    known = cached_principal(state, token) if token else None
    if known is not None:
        require(known, *CREW)
        return known

    def look_up() -> Principal:
        # The page's own (GET) session: one session and connection for the cookie and page.
        try:
            return principal_of(request, state, session)
        finally:
            if request.method not in READ_METHODS and session.in_transaction():
                session.rollback()  # a form post writes in a session of its own

    return await run_in_threadpool(look_up)


Viewer = Annotated[Principal, Depends(_principal)]


@router.get("/")
def root() -> RedirectResponse:
    """The dashboard lives under /ui/."""
    return RedirectResponse(f"{UI}/", status_code=307)


@router.get(f"{UI}/")
def home(principal: Viewer) -> RedirectResponse:
    """Facilities and admins land on the fleet; technicians on their work orders."""
    return RedirectResponse(home_of(principal), status_code=303)


@router.get(f"{UI}/login")
def login_page(request: Request, state: StateDep, next: str | None = None) -> Response:
    """The login form (or straight home when the session is still valid)."""
    if session_token(request):
        try:
            return RedirectResponse(home_of(principal_of(request, state)), status_code=303)
        except (HTTPException, ApiError):
            pass  # expired, revoked, or not a crew member's: log in again
    return page(request, "login.html", None, {"next": next or "", "error": ""})


@router.get(f"{UI}/fleet")
def fleet_page(
    request: Request, session: SessionDep, state: StateDep, principal: Viewer
) -> Response:
    """Every asset's health and state, with the counts that matter at the top.

    For the whole crew: technicians see the fleet read-only (the page has no actions), as
    `GET /api/v1/asset-status` serves them.
    """
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    # The fleet fragment is the same for every viewer of a language and zone: rendered once.
    if (rendered := shared_fragment(request, principal, "fleet.html")) is not None:
        return rendered
    now = utcnow()
    context = {
        "fleet": views.fleet(session, now),
        "notify": notify_view.panel(session, state.notify_health, now),
    }
    response = page(request, "fleet.html", principal, context)
    remember_fragment(request, principal, response)
    return response


@router.get(f"{UI}/alerts")
def alerts_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """Alerts needing attention, then shelved and suppressed ones."""
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    attention, parked = views.alerts(session)
    context = {"attention": attention, "parked": parked, "assets": views.asset_count(session)}
    return page(request, "alerts.html", principal, context)


@router.get(f"{UI}/alerts/{{alert_id}}")
def alert_page(
    alert_id: PathId, request: Request, session: SessionDep, principal: Viewer
) -> Response:
    """One alert: details, leading sensors, a chart around the anomaly, history, work order."""
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    alert = get_or_404(session, Alert, alert_id)
    return page(request, "alert.html", principal, views.alert_detail(session, alert, principal))


@router.get(f"{UI}/kpis")
def kpis_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """ISA-18.2 alarm KPIs of each site over the last 7 days."""
    require(principal, *STAFF)
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    start, end = kpi_window(None, None)
    figures = [(site, alarm_kpis(session, site.id, start, end)) for site in views.sites(session)]
    return page(request, "kpis.html", principal, {"figures": figures, "start": start, "end": end})


@router.get(f"{UI}/maintenance")
def maintenance_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """Preventive maintenance: what falls due in the next 30 days, and the plans."""
    require(principal, *CREW)
    return page(request, "maintenance.html", principal, views.maintenance(session, principal))


@router.get(f"{UI}/board")
def board_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """Open work orders in columns by state."""
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    return page(request, "board.html", principal, {"columns": views.board(session, principal)})


@router.get(f"{UI}/my")
def my_page(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """A technician's work orders, and unassigned ones to claim."""
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    return page(request, "my.html", principal, views.my_orders(session, principal.user_id))


@router.get(f"{UI}/work-orders/{{order_id}}")
def order_page(
    order_id: PathId, request: Request, session: SessionDep, principal: Viewer
) -> Response:
    """One work order with its actions (technicians see their own and unassigned ones)."""
    if (unchanged := not_modified(request, session, principal)) is not None:
        return unchanged
    order: WorkOrder = visible_order(session, order_id, principal)
    context: dict[str, Any] = {**views.order_detail(session, order), "etag": etag(order)}
    return page(request, "order.html", principal, context)


@router.get(f"{UI}/data/assets/{{asset_id}}/readings")
async def chart_data(
    asset_id: PathId,
    *,
    state: StateDep,
    session: SessionDep,
    principal: Viewer,
    start: Annotated[UtcDatetime | None, Query()] = None,
    end: Annotated[UtcDatetime | None, Query()] = None,
    sensors: Annotated[str | None, Query(max_length=4000)] = None,
) -> readings.ChartData:
    """The readings endpoint of the API, for the page's charts (cookie instead of bearer)."""
    require(principal, *CREW)
    return await readings.query_readings(
        asset_id, state, session, principal, start=start, end=end, sensors=sensors, points=240
    )
