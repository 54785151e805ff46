"""Rendering: the Jinja2 environment, its filters, and whole pages or their live fragments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from sqlalchemy.orm import Session

from api import i18n, revisions
from api.deps import READ_SESSION
from api.models import NotificationSettings, Site, utcnow
from api.security import Principal
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


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for extraction only")
    """Mark a string for the catalog; it is translated where it is shown."""
    return message


STATE_LABELS = {
    "active_unacknowledged": N_("Active, unacknowledged"),
    "active_acknowledged": N_("Active, acknowledged"),
    "rtn_unacknowledged": N_("Cleared, unacknowledged"),
    "normal": N_("Normal"),
    "shelved": N_("Shelved"),
    "suppressed": N_("Suppressed"),
    "out_of_service": N_("Out of service"),
    "open": N_("Open"),
    "assigned": N_("Assigned"),
    "in_progress": N_("In progress"),
    "on_hold": N_("On hold"),
    "completed": N_("Completed"),
    "verified": N_("Verified"),
    "reopened": N_("Reopened"),
    "cancelled": N_("Cancelled"),
    "learning": N_("Learning"),
    "alarm": N_("Alarm"),
    "instrument": N_("Instrument fault"),
    "stale": N_("No data"),
    "equipment_anomaly": N_("Equipment anomaly"),
    "instrument_fault": N_("Instrument fault"),
    "data_stale": N_("No data"),
    "fixed": N_("Fixed"),
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "critical": N_("critical"),
    "admin": N_("Administrator"),
    "facilities": N_("Facilities"),
    "technician": N_("Technician"),
    "no_fault_found": N_("No fault found"),
}
AGO, AHEAD, NEVER = N_("{age} ago"), N_("in {age}"), N_("never")
# What app.js writes itself; each page carries them in its language (<html data-i18n>).
SCRIPT_WORDS = (
    N_("Live · updated"),
    N_("Connection lost · retrying"),
    AGO,
    AHEAD,
    N_("latest"),
    N_("no data"),
    N_("over time"),
    N_("alert"),
    N_("The readings store is unavailable."),
    N_("Readings could not be loaded."),
    N_("No readings in this window."),
)


def _gettext(context: Any) -> Any:
    return context.get("_") or (lambda message: message)


def age(seconds: float | None) -> str:
    """A short human age: '45 s', '12 min', '3 h', '2 d' (units read alike in en and vi)."""
    if seconds is None:
        return NEVER
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def relative(when: datetime | None, _: Any = lambda message: message) -> str:
    """'12 min ago' or 'in 3 h', in the page's language."""
    if when is None:
        return str(_(NEVER))
    delta = (when - utcnow()).total_seconds()
    return str(_(AHEAD).format(age=age(delta)) if delta > 0 else _(AGO).format(age=age(-delta)))


@pass_context
def since(context: Any, when: datetime | None) -> Markup:
    """A relative time ('12 min ago') that the page's script keeps current between renders.

    Live fragments are only re-sent when data changed, so the words must age in the browser
    (it takes the words from the page: `data-ago` and `data-in` on <html>).
    """
    _ = _gettext(context)
    if when is None:
        return Markup.escape(_(NEVER))
    return Markup('<time datetime="{}" data-rel>{}</time>').format(iso(when), relative(when, _))


until = since  # 'in 3 h' for future times: the same element, read the other way


@pass_context
def stamp(context: Any, when: datetime | None) -> str:
    """A time for people, in the page's time zone (`tz`) and language, with its offset."""
    return i18n.local_time(when, context.get("tz"), context.get("lang") or i18n.DEFAULT)


def iso(when: datetime | None) -> str:
    """An RFC 3339 time for scripts."""
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_band(health: float | None) -> str:
    """The colour band of a health figure (text labels go with it in the page)."""
    if health is None:
        return "unknown"
    return "good" if health >= 80 else "watch" if health >= 50 else "poor"


@pass_context
def label(context: Any, value: str | None) -> str:
    """A state's words, in the page's language."""
    words = STATE_LABELS.get(value or "")
    if words is None:
        return (value or "").replace("_", " ").capitalize()
    return str(_gettext(context)(words))


env = templates.env
# `{% trans %}` blocks; `_`, `gettext` and `ngettext` come with each page's context (its
# viewer's language), so one environment serves every language at once.
env.add_extension("jinja2.ext.i18n")
env.filters.update(age=age, since=since, until=until, stamp=stamp, iso=iso, label=label)
env.filters["band"] = health_band


def not_modified(request: Request, session: Session, principal: Principal) -> Response | None:
    """304 for a poll whose fragment has not changed since the ETag it sent; None otherwise.

    Rendering the fleet of 1,000 assets takes a few hundred milliseconds and ~700 kB: every
    open dashboard would pay that every few seconds without this check. The tag is the
    change counters of every table the pages show (api/revisions.py), the viewer, the page,
    and the minute (time-based styling such as overdue work moves with the clock).
    """
    if request.headers.get(FRAGMENT_HEADER) != "1":
        return None
    minute = int(utcnow().timestamp()) // 60
    current = revisions.current(session, revisions.TRACKED)
    tag = revisions.etag(
        current, principal.actor, principal.role, request.url.path, request.url.query, minute
    )
    request.state.etag = tag
    # What a fragment that is the same for every viewer depends on (FragmentCache).
    request.state.content_key = f"{current}|{request.url.path}|{request.url.query}|{minute}"
    if revisions.matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    return None


@contextmanager
def _reading(request: Request, state: Any) -> Iterator[Session]:
    """The request's own read session when it has one (api.deps.get_read_session), else a
    new one. A second session would hold a second pooled connection while the request's is
    checked out: 50 dashboards rendering at once then exhausted SQLite's pool (5 + 10) and
    waited 30 s for its timeout (issue 20)."""
    own = getattr(request.state, READ_SESSION, None)
    if own is not None:
        yield own
        return
    with state.read_sessions() as session:
        yield session


def shared_fragment(request: Request, principal: Principal, name: str) -> Response | None:
    """The cached live fragment `partials/<name>` of this content for the viewer's language
    and zone, as a response (None: render it, then `remember_fragment`)."""
    key = _fragment_key(request, principal)
    state = getattr(request.app.state, "equipmon", None)
    if key is None or state is None:
        return None
    body = state.fragments.get(key)
    if body is None:
        return None
    response = HTMLResponse(body)
    _fragment_headers(request, response, key[1])
    return response


def remember_fragment(request: Request, principal: Principal, response: Response) -> None:
    """Keep a rendered live fragment for the other viewers (see FragmentCache)."""
    key = _fragment_key(request, principal)
    state = getattr(request.app.state, "equipmon", None)
    if key is not None and state is not None and response.status_code == 200:
        state.fragments.put(key, bytes(response.body))


def _fragment_key(request: Request, principal: Principal) -> tuple[str, str, str] | None:
    content = getattr(request.state, "content_key", None)
    if request.headers.get(FRAGMENT_HEADER) != "1" or content is None:
        return None
    return content, language_of(request, principal), default_zone(request)


def _fragment_headers(request: Request, response: Response, language: str) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = language
    if getattr(request.state, "etag", None):
        response.headers["ETag"] = request.state.etag
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"


def language_of(request: Request, principal: Principal | None) -> str:
    """The viewer's language: a user's own setting, else the browser's Accept-Language."""
    state = getattr(request.app.state, "equipmon", None)
    if principal is not None and principal.user_id is not None and state is not None:
        with _reading(request, state) as session:
            chosen = session.get(NotificationSettings, principal.user_id)
        if chosen is not None and chosen.language in i18n.LANGUAGES:
            return str(chosen.language)
    default: str = state.settings.requests.default_language if state is not None else i18n.DEFAULT
    return i18n.negotiate(request.headers.get("accept-language"), default)


def language_context(language: str) -> dict[str, Any]:
    """What templates need to speak a language and show local times in it."""
    translations = i18n.translations(language)

    def localtime(when: datetime | None, tz: str | None = None) -> str:
        return i18n.local_time(when, tz, language)

    return {
        "lang": language,
        "script_words": {word: translations.gettext(word) for word in SCRIPT_WORDS},
        "_": translations.gettext,
        "gettext": translations.gettext,
        "ngettext": translations.ngettext,
        "localtime": localtime,
    }


def default_zone(request: Request) -> str:
    """The time zone of pages that show several sites: theirs when they share one, else UTC.

    Every time shown carries its offset, so a page of sites in several zones is still exact.
    """
    state = getattr(request.app.state, "equipmon", None)
    if state is None:
        return "UTC"
    with _reading(request, state) as session:
        zones = session.scalars(sa.select(Site.timezone).distinct().limit(2)).all()
    return zones[0] if len(zones) == 1 else "UTC"


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
        # Actions flash whole sentences of the catalog; API refusals pass through as they are.
        "flash": {"kind": kind, "text": i18n.gettext(language)(text)}
        if text and not fragment
        else None,
        **language_context(language),
        "tz": context.get("tz") or default_zone(request),
        **{key: value for key, value in context.items() if key != "tz"},
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
