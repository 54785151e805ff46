"""Act from the message: a signed single-use link acknowledges an alert or accepts a work
order without logging in. GET shows a confirmation (mail scanners fetch links: fetching
must change nothing); POST acts. Every use and refusal is audited."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.db import run_in_transaction
from api.deps import SessionsDep, StateDep
from api.errors import ApiError, ConflictError, ForbiddenError, GoneError, NotFoundError
from api.models import ActionLink, Alert, NotificationSettings, User, WorkOrder, utcnow
from api.schemas.work_orders import WorkOrderTransition
from api.security import Principal
from api.services import alerts, audit
from api.services import work_orders as orders
from api.services.notify import links, texts
from api.settings import PolicySettings

router = APIRouter(tags=["action links"])
log = logging.getLogger(__name__)

PathAction = Annotated[str, Path(pattern=r"^(acknowledge-alert|accept-work-order)$")]
PathToken = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[0-9A-Za-z._-]+$")]
STATUS: dict[str, type[ApiError]] = {
    "invalid": NotFoundError,
    "other_action": ForbiddenError,
    "used": GoneError,
    "expired": GoneError,
    "state": ConflictError,
}
# Refusals are pages for browsers and problem documents for programs: both are documented.
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"text/html": {}}}
    for status, text in (
        (403, "The link was made for another action."),
        (404, "Not a valid link (forged, or unknown)."),
        (409, "Nothing left to do (already acknowledged or accepted)."),
        (410, "The link was used already, or expired."),
    )
}
WHAT = {
    "acknowledge_alert": "Acknowledge alert #{id}",
    "accept_work_order": "Accept work order #{id}",
}


def _language(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return texts.DEFAULT_LANGUAGE
    prefs = session.get(NotificationSettings, user_id)
    return prefs.language if prefs else texts.DEFAULT_LANGUAGE


def _refused(
    request: Request, sessions: SessionsDep, error: links.LinkRefusedError
) -> HTMLResponse:
    """A page for a browser, a problem document for a program. Refusals of genuine links are
    audited; forgeries only logged (an anonymous caller must not be able to fill the audit
    log)."""
    language = texts.DEFAULT_LANGUAGE
    if error.link_id is None:
        log.warning("refused a forged or unknown action link (%s)", error.reason)
    else:

        def work(session: Session) -> str:
            changes = {"reason": error.reason, "detail": error.detail}
            audit.record(
                session, "anonymous", "refuse_action_link", "action_link", error.link_id, changes
            )
            return _language(session, error.user_id)

        language = run_in_transaction(sessions, work)
    reason = texts.word(language, f"reason.{error.reason}", detail=error.detail)
    if "text/html" in request.headers.get("accept", ""):
        body = texts.page(language, "page.refused", reason=reason)
        return HTMLResponse(body, status_code=STATUS[error.reason].status)
    raise STATUS[error.reason](texts.page_text(language, "page.refused", reason=reason))


@router.get(
    "/action-links/{action}/{token}",
    summary="Confirm an action link",
    response_class=HTMLResponse,
    responses=REFUSALS,
)
def confirm(
    action: PathAction, token: PathToken, request: Request, sessions: SessionsDep, state: StateDep
) -> HTMLResponse:
    """A page naming what the link does, with a button that POSTs it; nothing changes yet."""
    scope = links.PATH_ACTIONS[action]

    def work(session: Session) -> tuple[str, str]:
        link = links.check(session, state.link_secret, token, scope, utcnow(), lock=False)
        return _language(session, link.user_id), WHAT[scope].format(id=link.entity_id)

    try:
        language, what = run_in_transaction(sessions, work)
    except links.LinkRefusedError as exc:
        return _refused(request, sessions, exc)
    form = f"<form method='post'><button type='submit'>{html.escape(what)}</button></form>"
    return HTMLResponse(texts.page(language, "page.confirm", what=what, form=form))


def _principal(session: Session, link: ActionLink) -> Principal:
    user = session.get(User, link.user_id) if link.user_id else None
    if user is None:
        return Principal("facilities", f"link:{link.label}")
    if not user.active:
        raise links.LinkRefusedError("invalid", link)
    return Principal(user.role, f"user:{user.username}", user.id)


def _acknowledge(
    session: Session, link: ActionLink, principal: Principal, _: PolicySettings
) -> None:
    alert = session.get(Alert, link.entity_id, with_for_update=True)
    if alert is None:
        raise links.LinkRefusedError("invalid", link)
    alerts.acknowledge(session, alert, principal, utcnow())


def _accept(
    session: Session, link: ActionLink, principal: Principal, policy: PolicySettings
) -> None:
    order = session.get(WorkOrder, link.entity_id, with_for_update=True)
    if order is None:
        raise links.LinkRefusedError("invalid", link)
    if principal.user_id is None:
        raise links.LinkRefusedError("other_action", link)
    if order.state == "assigned" and order.assignee_id == principal.user_id:
        to = WorkOrderTransition(to="in_progress")
    else:
        to = WorkOrderTransition(to="assigned", assignee_id=principal.user_id)
    orders.transition(session, order, to, principal=principal, policy=policy, now=utcnow())


ACT: dict[str, Callable[[Session, ActionLink, Principal, PolicySettings], None]] = {
    "acknowledge_alert": _acknowledge,
    "accept_work_order": _accept,
}


@router.post(
    "/action-links/{action}/{token}",
    summary="Use an action link",
    response_class=HTMLResponse,
    responses=REFUSALS,
)
def use(
    action: PathAction, token: PathToken, request: Request, sessions: SessionsDep, state: StateDep
) -> HTMLResponse:
    """Do what the link grants, once: 404 for a forged link, 403 for another action, 410
    once used or expired, 409 when there is nothing left to do."""
    scope = links.PATH_ACTIONS[action]

    def work(session: Session) -> tuple[str, str]:
        now = utcnow()
        link = links.check(session, state.link_secret, token, scope, now, lock=True)
        principal = _principal(session, link)
        try:
            ACT[scope](session, link, principal, state.settings.policy)
        except ApiError as exc:
            raise links.LinkRefusedError("state", link, exc.detail) from exc
        link.used_at = now
        grant = {"action": scope, "entity_id": link.entity_id, "via": link.label}
        audit.record(session, principal.actor, "use_action_link", "action_link", link.id, grant)
        return _language(session, link.user_id), WHAT[scope].format(id=link.entity_id)

    try:
        language, what = run_in_transaction(sessions, work)
    except links.LinkRefusedError as exc:
        return _refused(request, sessions, exc)
    return HTMLResponse(texts.page(language, "page.done", what=what))
