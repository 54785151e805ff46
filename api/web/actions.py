"""The UI's form posts: log in and out, acknowledge, shelve, comment, work-order transitions.

Each action calls the same route function the JSON API serves (so the rules, transactions and
ETag checks are the API's own), then redirects back with a one-line message (post-redirect-get).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.crud import get_or_404
from api.db import run_in_transaction
from api.deps import StateDep, client_address
from api.errors import (
    ApiError,
    ForbiddenError,
    InvalidError,
    PreconditionFailedError,
    RateLimitedError,
    UnauthorizedError,
)
from api.i18n import N_
from api.models import Alert, AlertEvent, utcnow
from api.pagination import PathId
from api.routes import alerts as alert_routes
from api.routes import pm as pm_routes
from api.routes import work_orders as order_routes
from api.schemas.alerts import AlertAction
from api.schemas.auth import LoginRequest
from api.schemas.pm import PmPlanCreate
from api.schemas.work_orders import WorkOrderCreate, WorkOrderTransition, WorkOrderUpdate
from api.services import audit
from api.services import login as login_service
from api.web.pages import Viewer
from api.web.render import page
from api.web.session import (
    CREW,
    STAFF,
    UI,
    check_form,
    end_session,
    flash,
    require,
    safe_next,
    same_origin,
    set_session,
)

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str | None, Form(max_length=128)]
Next = Annotated[str | None, Form(max_length=2000)]
Note = Annotated[str, Form(max_length=2000)]
# Shelving is for hours, not weeks: a shelved alert nobody remembers is a hidden hazard.
MAX_SHELVE_HOURS = 72


def _outcome(back: str, work: Callable[[], object], done: str) -> RedirectResponse:
    """Run an action; redirect back with its result or its refusal as a message."""
    response = RedirectResponse(back, status_code=303)
    try:
        work()
    except (PreconditionFailedError, StaleDataError):
        flash(
            response, "Someone else changed this work order meanwhile; check it and retry.", "error"
        )
    except ApiError as exc:
        flash(response, exc.detail, "error")
    except ValidationError as exc:
        flash(response, "; ".join(str(e["msg"]) for e in exc.errors()[:3]), "error")
    else:
        flash(response, done)
    return response


@router.post(f"{UI}/login", response_model=None)
def login(
    request: Request,
    state: StateDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Next = None,
) -> RedirectResponse | HTMLResponse:
    """Check the password like `POST /api/v1/auth/login` and keep its token in the cookie."""
    if not same_origin(request):
        raise ForbiddenError("cross-site form posts are refused")

    def again(error: str, status: int) -> HTMLResponse:
        context = {"next": next or "", "error": error, "username": username}
        return page(request, "login.html", None, context, status_code=status)

    try:
        body = LoginRequest(username=username, password=password)
        with state.sessions() as session:
            issued = login_service.login(
                session,
                body,
                settings=state.settings.api,
                throttle=state.login_throttle,
                address=client_address(request),
            )
    except (ValidationError, UnauthorizedError):
        return again("Wrong username or password.", 401)
    except RateLimitedError as exc:
        locked = again("Too many failed logins; wait a while and try again.", 429)
        locked.headers.update(exc.headers)
        return locked
    if issued.role not in CREW:
        return again("This account is for machines; it cannot use the dashboard.", 403)
    principal_home = f"{UI}/my" if issued.role == "technician" else f"{UI}/fleet"
    response = RedirectResponse(safe_next(next, principal_home), status_code=303)
    set_session(response, request, issued.token, state.settings.api.login_token_ttl_s)
    return response


@router.post(f"{UI}/logout")
def logout(request: Request, state: StateDep, principal: Viewer, csrf: Csrf = None) -> Response:
    """End the session: the token is revoked, not only forgotten by this browser."""
    check_form(request, csrf)
    response = RedirectResponse(f"{UI}/login", status_code=303)
    end_session(state, principal, response)
    return response


@router.post(f"{UI}/alerts/{{alert_id}}/acknowledge")
def acknowledge(
    alert_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    csrf: Csrf = None,
    next: Next = None,
) -> RedirectResponse:
    """Acknowledge an alert (any crew member)."""
    check_form(request, csrf)
    require(principal, *CREW)
    return _outcome(
        safe_next(next, f"{UI}/alerts"),
        lambda: alert_routes.acknowledge(alert_id, state.sessions, principal),
        N_("Alert acknowledged."),
    )


@router.post(f"{UI}/alerts/{{alert_id}}/shelve")
def shelve(
    alert_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    hours: Annotated[int, Form(ge=1, le=MAX_SHELVE_HOURS)] = 4,
    reason: Note = "",
    csrf: Csrf = None,
    next: Next = None,
) -> RedirectResponse:
    """Shelve an alert for some hours, with a reason (facilities and admins)."""
    check_form(request, csrf)
    require(principal, *STAFF)

    def work() -> object:
        body = AlertAction(
            action="shelve", reason=reason.strip(), until=utcnow() + timedelta(hours=hours)
        )
        return alert_routes.alert_action(alert_id, body, state.sessions, state.settings, principal)

    return _outcome(safe_next(next, f"{UI}/alerts"), work, f"Alert shelved for {hours} h.")


@router.post(f"{UI}/alerts/{{alert_id}}/unshelve")
def unshelve(
    alert_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    csrf: Csrf = None,
    next: Next = None,
) -> RedirectResponse:
    """End shelving early (the alert re-alarms if its condition is still present)."""
    check_form(request, csrf)
    require(principal, *STAFF)
    body = AlertAction(action="unshelve", reason="unshelved from the dashboard")
    return _outcome(
        safe_next(next, f"{UI}/alerts"),
        lambda: alert_routes.alert_action(
            alert_id, body, state.sessions, state.settings, principal
        ),
        "Alert unshelved.",
    )


@router.post(f"{UI}/alerts/{{alert_id}}/comment")
def comment(
    alert_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    text: Note = "",
    csrf: Csrf = None,
    next: Next = None,
) -> RedirectResponse:
    """Add a comment to an alert's history (any crew member)."""
    check_form(request, csrf)
    require(principal, *CREW)
    back = safe_next(next, f"{UI}/alerts/{alert_id}")
    if not text.strip() or "\x00" in text:
        response = RedirectResponse(back, status_code=303)
        flash(response, "Write something to comment.", "error")
        return response

    def work() -> None:
        def record(session: Session) -> None:
            alert = get_or_404(session, Alert, alert_id)
            session.add(
                AlertEvent(
                    alert_id=alert.id,
                    site_id=alert.site_id,
                    at=utcnow(),
                    event="comment",
                    actor=principal.actor,
                    reason=text.strip(),
                    state_from=alert.state,
                    state_to=alert.state,
                    detail={},
                )
            )
            audit.record(session, principal.actor, "comment", "alert", alert.id, {"text": text})

        run_in_transaction(state.sessions, record)

    return _outcome(back, work, N_("Comment added."))


@router.post(f"{UI}/work-orders/{{order_id}}/transition")
def transition(  # noqa: PLR0917 (one form field per parameter)
    order_id: PathId,
    request: Request,
    state: StateDep,
    principal: Viewer,
    to: Annotated[str, Form(max_length=32)],
    etag: Annotated[str, Form(max_length=200)],
    resolution: Annotated[str | None, Form(max_length=32)] = None,
    failure_code: Annotated[str | None, Form(max_length=64)] = None,
    cause: Annotated[str | None, Form(max_length=2000)] = None,
    remedy: Annotated[str | None, Form(max_length=2000)] = None,
    reason: Note = "",
    csrf: Csrf = None,
    next: Next = None,
) -> RedirectResponse:
    """Claim, start, hold or complete a work order, guarded by the ETag the page showed."""
    check_form(request, csrf)
    require(principal, *CREW)
    # Whole sentences, so the page can show them in its language (render.page translates).
    words = {
        "assigned": N_("Work order claimed."),
        "in_progress": N_("Work started."),
        "on_hold": N_("Work order put on hold."),
        "completed": N_("Work order completed."),
    }

    def work() -> object:
        body = WorkOrderTransition.model_validate(
            {
                "to": to,
                "reason": reason.strip(),
                "resolution": resolution or None,
                "failure_code": (failure_code or "").strip() or None,
                "cause": (cause or "").strip() or None,
                "remedy": (remedy or "").strip() or None,
            }
        )
        with state.sessions() as session:
            return order_routes.transition_work_order(
                order_id,
                body,
                response=Response(),
                session=session,
                read=session,
                settings=state.settings,
                principal=principal,
                if_match=etag,
            )

    done = words.get(to, N_("Work order moved."))
    return _outcome(safe_next(next, f"{UI}/work-orders/{order_id}"), work, done)


@router.post(f"{UI}/work-orders/{{order_id}}/note")
def note(
    order_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    etag: Annotated[str, Form(max_length=200)],
    text: Note = "",
    csrf: Csrf = None,
) -> RedirectResponse:
    """Add a note to a work order (its assignee, or staff)."""
    check_form(request, csrf)
    require(principal, *CREW)

    def work() -> object:
        body = WorkOrderUpdate(note=text.strip())
        with state.sessions() as session:
            return order_routes.update_work_order(
                order_id,
                body,
                response=Response(),
                session=session,
                read=session,
                principal=principal,
                if_match=etag,
            )

    return _outcome(f"{UI}/work-orders/{order_id}", work, N_("Note added."))


@router.post(f"{UI}/work-orders/{{order_id}}/checklist")
async def checklist(
    order_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
) -> RedirectResponse:
    """Tick checklist steps and record measurements (its assignee, or staff).

    The form carries, per step ``i``: ``done_i`` (a checkbox), ``value_i`` (a measurement) and
    ``result_i`` (pass / fail); steps the form does not name keep what they had.
    """
    form = await request.form()
    check_form(request, _text(form.get("csrf")))
    require(principal, *CREW)
    etag = _text(form.get("etag")) or ""

    def work() -> object:
        with state.sessions() as session:
            order = order_routes.get_work_order(order_id, Response(), session, principal)
            steps = [_ticked(i, s.model_dump(), form) for i, s in enumerate(order.checklist)]
            body = WorkOrderUpdate.model_validate({"checklist": steps})
            return order_routes.update_work_order(
                order_id,
                body,
                response=Response(),
                session=session,
                read=session,
                principal=principal,
                if_match=etag,
            )

    # The database work runs in the thread pool, as in the other (synchronous) actions.
    return await run_in_threadpool(
        _outcome, f"{UI}/work-orders/{order_id}", work, "Checklist saved."
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ticked(i: int, step: dict[str, object], form: Mapping[str, object]) -> dict[str, object]:
    """A checklist step with what the form says of it (a bad number is a 422 message)."""
    step["done"] = form.get(f"done_{i}") == "on"
    raw = _text(form.get(f"value_{i}"))
    if raw is not None:
        step["value"] = _number(raw, f"value_{i}")
    result = _text(form.get(f"result_{i}"))
    if result is not None:
        step["result"] = result or None
    step.pop("flagged", None)  # the server decides it again
    return step


@router.post(f"{UI}/pm-plans")
def create_plan(
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    site_id: Annotated[str, Form(max_length=20)] = "",
    applies_to: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=200)] = "",
    trigger: Annotated[str, Form(max_length=16)] = "calendar",
    every: Annotated[str, Form(max_length=20)] = "",
    unit: Annotated[str, Form(max_length=16)] = "months",
    anchor: Annotated[str, Form(max_length=16)] = "completion",
    meter_name: Annotated[str, Form(max_length=64)] = "running_hours",
    meter_every: Annotated[str, Form(max_length=20)] = "",
    lead_days: Annotated[str, Form(max_length=20)] = "",
    estimated_minutes: Annotated[str, Form(max_length=20)] = "",
    checklist: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Csrf = None,
) -> RedirectResponse:
    """A PM plan from the maintenance page's form (facilities and admins).

    ``applies_to`` is ``asset:<id>`` or ``type:<asset type>``; ``checklist`` one step per line,
    ``!`` first for a required step, ``step | unit | min | max`` for a measurement. Every field
    is checked by ``PmPlanCreate`` after the role (a wrong one comes back as a message).
    """
    check_form(request, csrf)
    require(principal, *STAFF)

    def work() -> object:
        kind, _, target = applies_to.partition(":")
        body: dict[str, object] = {
            "site_id": _number(site_id, "site_id"),
            "title": title.strip(),
            "lead_days": _number(lead_days, "lead_days") or 0,
            "estimated_minutes": int(_number(estimated_minutes, "estimated_minutes") or 0),
            "checklist": steps_from_text(checklist),
        }
        body["asset_id" if kind == "asset" else "asset_type"] = target
        if trigger in ("calendar", "both"):
            body.update(every=_number(every, "every"), unit=unit, anchor=anchor)
        if trigger in ("meter", "both"):
            body.update(meter_name=meter_name, meter_every=_number(meter_every, "meter_every"))
        plan = PmPlanCreate.model_validate(body)
        with state.sessions() as session:
            return pm_routes.create_plan(plan, session, principal)

    return _outcome(f"{UI}/maintenance", work, f"Plan {title.strip()!r} created.")


def _number(raw: str, where: str) -> float | None:
    if not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidError(f"{where}: {raw[:40]!r} is not a number", where=where) from None


def steps_from_text(text: str) -> list[dict[str, object]]:
    """Checklist steps from lines: ``!`` marks a required one, ``step | unit | min | max`` a
    measurement (limits optional)."""
    steps: list[dict[str, object]] = []
    for line in text.splitlines():
        item = line.strip()
        if not item:
            continue
        required = item.startswith("!")
        parts = [p.strip() for p in item.lstrip("!").split("|")]
        step: dict[str, object] = {"item": parts[0], "required": required}
        if len(parts) > 1:
            step.update(kind="measurement", unit=parts[1])
            for key, raw in zip(("min", "max"), parts[2:4], strict=False):
                if raw:
                    step[key] = _number(raw, f"checklist: {parts[0]}")
        steps.append(step)
    return steps


@router.post(f"{UI}/work-orders/{{order_id}}/follow-up")
def follow_up(
    order_id: PathId,
    request: Request,
    *,
    state: StateDep,
    principal: Viewer,
    step: Annotated[int, Form(ge=0, le=99)] = 0,
    csrf: Csrf = None,
) -> RedirectResponse:
    """Open a corrective order for a flagged checklist step (out of limits, or failed).

    The same idempotency key for the same step makes a second click answer with the first
    order instead of a duplicate.
    """
    check_form(request, csrf)
    require(principal, *CREW)
    created: list[int] = []

    def work() -> object:
        with state.read_sessions() as session:
            order = order_routes.get_work_order(order_id, Response(), session, principal)
        if step >= len(order.checklist) or not order.checklist[step].flagged:
            raise InvalidError(f"step {step + 1} is not flagged", where="step")
        item = order.checklist[step]
        seen = f"{item.value:g} {item.unit}".strip() if item.value is not None else item.result
        body = WorkOrderCreate(
            asset_id=order.asset_id,
            title=f"Follow-up: {item.item} ({seen}) on WO {order.id}"[:200],
            description=f"Opened from step {step + 1} of work order {order.id}: {item.item}, "
            f"{seen}, limits {item.min if item.min is not None else '-'}"
            f"..{item.max if item.max is not None else '-'} {item.unit}".strip(),
            work_type="corrective",
            priority=min(order.priority, 3),
        )
        new = order_routes.create_work_order(
            body,
            response=Response(),
            sessions=state.sessions,
            principal=principal,
            idempotency_key=f"follow-up:{order.id}:{step}",
        )
        created.append(new.id)
        return new

    response = _outcome(f"{UI}/work-orders/{order_id}", work, N_("Follow-up work order opened."))
    if created:
        response.headers["location"] = f"{UI}/work-orders/{created[0]}"
    return response
