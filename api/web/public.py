"""Public pages for people without accounts: an asset's (or a site's) request form, opened by
the token of its QR label, and a requester's status page, opened by the token they were given.

Nothing here reads a session: a page shows one link's asset, or one request, and no more.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData, UploadFile

from api.deps import StateDep, client_address
from api.errors import ApiError, NotFoundError
from api.i18n import gettext
from api.models import Asset, Site, utcnow
from api.schemas.requests import Category, Urgency
from api.services import requests as svc
from api.state import AppState
from api.web.render import language_of, page
from api.web.session import UI, principal_of, session_token

router = APIRouter(include_in_schema=False)

CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
URGENCIES: tuple[str, ...] = Urgency.__args__  # type: ignore[attr-defined]
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}
# Field names a person never fills: the form hides it; a bot filling every field gives itself
# away, is thanked, and nothing is stored.
HONEYPOT = "website"
# Room for the text fields and multipart framing around the photo.
FORM_OVERHEAD = 64 * 1024


def _crew_asset_page(request: Request, state: AppState, asset_id: int | None) -> str | None:
    """Where a logged-in crew member who scanned a label goes instead (the asset's page)."""
    if asset_id is None or not session_token(request) or request.query_params.get("report"):
        return None
    try:
        principal_of(request, state)
    except Exception:
        return None
    return f"{UI}/assets/{asset_id}"


def _form_context(state: AppState, token: str) -> dict[str, Any]:
    with state.read_sessions() as session:
        _link, site, asset = svc.resolve(session, token)
        return {
            "token": token,
            "site": {"name": site.name, "timezone": site.timezone},
            "asset": {"id": asset.id, "name": asset.name, "code": asset.code,
                      "location": asset.location} if asset else None,
            "categories": CATEGORIES,
            "urgencies": URGENCIES,
            "max_photo_mb": state.settings.requests.max_photo_bytes / 1024 / 1024,
            "max_text": state.settings.requests.max_text_chars,
            "values": {},
            "errors": [],
        }  # fmt: skip


def _missing(request: Request, language: str) -> HTMLResponse:
    _ = gettext(language)
    context = {"message": _("This label is not valid any more. Please tell the front desk.")}
    return page(request, "public/missing.html", None, context, 404, language=language)


@router.get("/q/{token}", response_model=None)
def request_form(token: str, request: Request, state: StateDep) -> Response:
    """The request form of a label (staff who are logged in land on the asset's page)."""
    language = language_of(request, None)
    try:
        context = _form_context(state, token)
    except NotFoundError:
        return _missing(request, language)
    asset = context["asset"]
    target = _crew_asset_page(request, state, asset["id"] if asset else None)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return page(request, "public/request_form.html", None, context, language=language)


@router.post("/q/{token}", response_model=None)
async def submit_request(  # noqa: PLR0911 (each refusal is its own answer)
    token: str, request: Request, state: StateDep
) -> Response:
    """File a request from the form: limits first, then the fields, then the photo."""
    language = language_of(request, None)
    _ = gettext(language)
    limits = state.settings.requests
    try:
        context = await run_in_threadpool(_form_context, state, token)
    except NotFoundError:
        return _missing(request, language)

    def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        reply = page(
            request, "public/request_form.html", None,
            {**context, "errors": [message]}, status, language=language,
        )  # fmt: skip
        reply.headers.update(headers or {})
        return reply

    too_large = _("The photo is too large ({size:.0f} MB). The limit is {limit:.0f} MB: "
                  "take a smaller one or send the request without it.")  # fmt: skip
    length = request.headers.get("content-length") or "0"
    declared = int(length) if length.isdigit() else 0
    if declared > limits.max_photo_bytes + FORM_OVERHEAD:
        size, limit = declared / 1024 / 1024, limits.max_photo_bytes / 1024 / 1024
        return refuse(413, too_large.format(size=size, limit=limit))
    address = client_address(request)
    assert state.request_limiter is not None
    assert state.request_target_limiter is not None
    wait = state.request_limiter.acquire(f"client:{address}")
    if wait == 0:
        wait = state.request_target_limiter.acquire(f"link:{token}")
    if wait > 0:
        minutes = max(1, round(wait / 60))
        message = _("Too many requests from here. Please try again in {minutes} min, or call "
                    "the front desk.").format(minutes=minutes)  # fmt: skip
        return refuse(429, message, {"Retry-After": str(max(1, round(wait)))})
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    except Exception:
        return refuse(422, _("The form could not be read. Please fill it in again."))
    try:
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        context["values"] = values
        if values.get(HONEYPOT):
            return page(request, "public/request_thanks.html", None, {}, 200, language=language)
        fields, errors = _fields(form, context["asset"] is None, limits.max_text_chars, _)
        photo = await _photo(form.get("photo"), limits.max_photo_bytes, errors, too_large, _)
    finally:
        await form.close()  # the photo's spooled temporary file
    if errors:
        return refuse(422, " ".join(errors))
    fields["language"] = language

    def store() -> str:
        with state.sessions() as session:
            link, _site, asset = svc.resolve(session, token)
            filed = svc.file(
                session, site_id=link.site_id, asset_id=asset.id if asset else None,
                fields=fields, source="public", now=utcnow(), photo=photo,
            )  # fmt: skip
            session.commit()
            return filed.token

    try:
        status_token = await run_in_threadpool(store)
    except ApiError as exc:
        return refuse(exc.status, exc.detail)
    return RedirectResponse(f"{svc.TRACK_PATH}{status_token}?new=1", status_code=303)


def _fields(
    form: FormData, needs_location: bool, max_text: int, _: Any
) -> tuple[dict[str, Any], list[str]]:
    """The request's fields from the form, and what is wrong with them (in the page's words)."""
    errors: list[str] = []

    def text(name: str, limit: int) -> str:
        value = form.get(name)
        return value.strip().replace("\x00", "")[:limit] if isinstance(value, str) else ""

    description = text("description", max_text + 1)
    if len(description) < 3:
        errors.append(_("Please describe the problem."))
    elif len(description) > max_text:
        errors.append(_("The description is too long ({limit} characters at most).").format(
            limit=max_text))  # fmt: skip
    location = text("location", 200)
    if needs_location and not location:
        errors.append(_("Please say where the problem is."))
    category = text("category", 32)
    urgency = text("urgency", 16)
    phone = text("phone", 41)
    if len(phone) > 40 or any(ch not in "0123456789+-() ." for ch in phone):
        errors.append(_("The phone number can only have digits, spaces and + - ( )."))
    fields = {
        "category": category if category in CATEGORIES else "other",
        "urgency": urgency if urgency in URGENCIES else "normal",
        "description": description[:max_text],
        "location": location,
        "requester_name": text("name", 200),
        "requester_phone": phone[:40],
    }
    return fields, errors


async def _photo(
    value: object, limit: int, errors: list[str], too_large: str, _: Any
) -> tuple[bytes, str] | None:
    """The photo's bytes and type, or None (no photo, or a refused one noted in errors)."""
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = await value.read(limit + 1)
    if len(data) > limit:
        errors.append(too_large.format(size=(value.size or len(data)) / 1024 / 1024,
                                       limit=limit / 1024 / 1024))  # fmt: skip
        return None
    kind = (value.content_type or "").lower()
    if kind not in PHOTO_TYPES or not data:
        errors.append(_("The photo must be a JPEG, PNG, WebP or HEIC picture."))
        return None
    return data, kind


@router.get("/t/{token}", response_model=None)
def request_status(token: str, request: Request, state: StateDep) -> Response:
    """A requester's own request: what they reported and how far it has come."""
    language = language_of(request, None)
    with state.read_sessions() as session:
        try:
            work_request = svc.by_status_token(session, token)
        except NotFoundError:
            _ = gettext(language)
            gone = {"message": _("We cannot find this request. Check the link you were given.")}
            return page(request, "public/missing.html", None, gone, 404, language=language)
        current, steps = svc.progress(session, work_request)
        site = session.get(Site, work_request.site_id)
        asset = session.get(Asset, work_request.asset_id) if work_request.asset_id else None
        context: dict[str, Any] = {
            "req": work_request,
            "current": current,
            "steps": steps,
            "tz": site.timezone if site else "UTC",
            "site_name": site.name if site else "",
            "asset_name": asset.name if asset else "",
            "new": request.query_params.get("new") == "1",
            "link": f"{svc.base_url(state.settings)}{svc.TRACK_PATH}{token}",
        }
        reply = page(request, "public/request_status.html", None, context, language=language)
    # The token is the only key to this page: never send it on to other sites.
    reply.headers["Referrer-Policy"] = "no-referrer"
    return reply
