"""Rendering: the Jinja2 environment, its filters, and whole pages or their live fragments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session

from api import i18n
from api.models import NotificationSettings, utcnow
from api.security import Principal
from api.web import views
from api.web.session import FLASH_COOKIE, STAFF, csrf_token, session_token

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
# Polling pages ask for their live part with this header and get the fragment alone.
FRAGMENT_HEADER = "x-fragment"
# Only our own files run; inline style attributes carry gauge and bar sizes. No framing, so
# no other site can overlay the action buttons (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

STATE_LABELS = {
    "active_unacknowledged": "Active, unacknowledged",
    "active_acknowledged": "Active, acknowledged",
    "rtn_unacknowledged": "Cleared, unacknowledged",
    "normal": "Normal",
    "shelved": "Shelved",
    "suppressed": "Suppressed",
    "out_of_service": "Out of service",
    "open": "Open",
    "assigned": "Assigned",
    "in_progress": "In progress",
    "on_hold": "On hold",
    "completed": "Completed",
    "verified": "Verified",
    "reopened": "Reopened",
    "cancelled": "Cancelled",
    "learning": "Learning",
    "alarm": "Alarm",
    "instrument": "Instrument fault",
    "stale": "No data",
}


def age(seconds: float | None) -> str:
    """A short human age: '45 s', '12 min', '3 h', '2 d'."""
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def relative(when: datetime | None) -> str:
    """'12 min ago' or 'in 3 h'."""
    if when is None:
        return "never"
    delta = (when - utcnow()).total_seconds()
    return f"in {age(delta)}" if delta > 0 else f"{age(-delta)} ago"


def since(when: datetime | None) -> Markup:
    """A relative time ('12 min ago') that the page's script keeps current between renders.

    Live fragments are only re-sent when data changed, so the words must age in the browser.
    """
    if when is None:
        return Markup("never")
    return Markup('<time datetime="{}" data-rel>{}</time>').format(iso(when), relative(when))


until = since  # 'in 3 h' for future times: the same element, read the other way


def stamp(when: datetime | None) -> str:
    """A UTC time for people: '2026-11-27 07:00 UTC'."""
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(when: datetime | None) -> str:
    """An RFC 3339 time for scripts."""
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_band(health: float | None) -> str:
    """The colour band of a health figure (text labels go with it in the page)."""
    if health is None:
        return "unknown"
    return "good" if health >= 80 else "watch" if health >= 50 else "poor"


def label(value: str | None) -> str:
    """A state's words."""
    return STATE_LABELS.get(value or "", (value or "").replace("_", " ").capitalize())


env = templates.env
# `{% trans %}` blocks; `_`, `gettext` and `ngettext` come with each page's context (its
# viewer's language), so one environment serves every language at once.
env.add_extension("jinja2.ext.i18n")
env.filters.update(age=age, since=since, until=until, stamp=stamp, iso=iso, label=label)
env.filters["band"] = health_band


def not_modified(request: Request, session: Session) -> Response | None:
    """304 for a poll whose fragment has not changed since the ETag it sent; None otherwise.

    Rendering the fleet of 1,000 assets takes a few hundred milliseconds and ~700 kB: every
    open dashboard would pay that every few seconds without this check.
    """
    if request.headers.get(FRAGMENT_HEADER) != "1":
        return None
    tag = f'W/"{views.change_stamp(session, utcnow())}"'
    request.state.etag = tag
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    return None


def language_of(request: Request, principal: Principal | None) -> str:
    """The viewer's language: a user's own setting, else the browser's Accept-Language."""
    state = getattr(request.app.state, "equipmon", None)
    if principal is not None and principal.user_id is not None and state is not None:
        with state.read_sessions() as session:
            chosen = session.get(NotificationSettings, principal.user_id)
        if chosen is not None and chosen.language in i18n.LANGUAGES:
            return chosen.language
    default = state.settings.requests.default_language if state is not None else i18n.DEFAULT
    return i18n.negotiate(request.headers.get("accept-language"), default)


def language_context(language: str) -> dict[str, Any]:
    """What templates need to speak a language and show local times in it."""
    translations = i18n.translations(language)

    def localtime(when: datetime | None, tz: str | None = None) -> str:
        return i18n.local_time(when, tz, language)

    return {
        "lang": language,
        "_": translations.gettext,
        "gettext": translations.gettext,
        "ngettext": translations.ngettext,
        "localtime": localtime,
    }


def page(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any],
    status_code: int = 200,
    *,
    language: str | None = None,
) -> HTMLResponse:
    """A whole page, or only its live fragment (`partials/<name>`) when the poller asks."""
    fragment = request.headers.get(FRAGMENT_HEADER) == "1"
    language = language or language_of(request, principal)
    token = session_token(request)
    flash_raw = request.cookies.get(FLASH_COOKIE)
    kind, _, text = unquote(flash_raw).partition(":") if flash_raw else ("", "", "")
    full = {
        "principal": principal,
        "user": principal.actor.removeprefix("user:") if principal else "",
        "staff": principal is not None and principal.role in STAFF,
        "csrf": csrf_token(token) if token else "",
        "path": request.url.path,
        "flash": {"kind": kind, "text": text} if text and not fragment else None,
        **language_context(language),
        **context,
    }
    response = templates.TemplateResponse(
        request, f"partials/{name}" if fragment else name, full, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = language
    if fragment and getattr(request.state, "etag", None):
        response.headers["ETag"] = request.state.etag
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    if flash_raw and not fragment:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
