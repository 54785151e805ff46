"""Browser sessions of the web UI: the login token in a cookie, CSRF checks, role checks.

The cookie holds the same bearer token `POST /api/v1/auth/login` issues, so a browser session
is checked, expired and revoked exactly like an API token. It is HttpOnly (scripts cannot read
it) and SameSite=Strict (other sites' pages do not send it); every state-changing form also
carries a token derived from the session and is refused when Origin or Referer name another
site, so a cross-site form post is stopped twice over.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from api.deps import ADMIN, FACILITIES, TECHNICIAN, RoleCheck, principal_of_token
from api.errors import ForbiddenError, UnauthorizedError
from api.models import ApiToken, utcnow
from api.security import Principal
from api.state import AppState

COOKIE = "eqm_session"
FLASH_COOKIE = "eqm_flash"
UI = "/ui"
CREW = (ADMIN, FACILITIES, TECHNICIAN)
STAFF = (ADMIN, FACILITIES)


def session_token(request: Request) -> str | None:
    """The login token the browser sent, if any."""
    return request.cookies.get(COOKIE) or None


def login_redirect(request: Request) -> HTTPException:
    """A 303 to the login page that comes back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, headers={"Location": f"{UI}/login?next={quote(target, safe='')}"})


def principal_of(request: Request, state: AppState, session: Session | None = None) -> Principal:
    """The logged-in crew member of this request; a redirect to the login page otherwise.

    ``session``: the request's read session to look the token up in (else one of its own).
    """
    token = session_token(request)
    if token is None:
        raise login_redirect(request)
    try:
        if session is not None:
            principal = principal_of_token(state, session, token)
        else:
            with state.read_sessions() as own:
                principal = principal_of_token(state, own, token)
    except UnauthorizedError:
        raise login_redirect(request) from None
    require(principal, *CREW)
    return principal


def require(principal: Principal, *roles: str) -> None:
    """ForbiddenError unless the principal has one of roles (the API's own role check).

    The UI calls route functions directly, which skips their dependencies; this repeats the
    check each route declares.
    """
    RoleCheck(*roles).check(principal)


def csrf_token(token: str) -> str:
    """The form token of a session: a keyed hash only a page of this origin can embed."""
    return hmac.new(token.encode(), b"equipmon-ui-csrf", hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """False when Origin (or, lacking it, Referer) names another host than this request's."""
    # Behind a reverse proxy that rewrites Host, the public name is in X-Forwarded-Host; a
    # cross-site form cannot set that header, so accepting it opens nothing.
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value:
            return value != "null" and urlsplit(value).netloc in hosts - {""}
    return True  # no browser hint (a script); the form token still has to match


def check_form(request: Request, sent: str | None) -> None:
    """Refuse a cross-site post: foreign Origin/Referer, or a missing or wrong form token."""
    if not same_origin(request):
        raise ForbiddenError("cross-site form posts are refused")
    token = session_token(request)
    if token is None or sent is None or not hmac.compare_digest(csrf_token(token), sent):
        raise ForbiddenError("the form is stale or forged: reload the page and try again")


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    """Put the login token in the session cookie."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        # Secure is added by SecureCookieMiddleware, for this cookie and the others alike.
    )


def end_session(state: AppState, principal: Principal, response: Response) -> None:
    """Revoke the session's token at once and drop the cookie."""
    if principal.token_id is not None:
        with state.sessions() as session:
            session.execute(
                sa.update(ApiToken)
                .where(ApiToken.id == principal.token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            session.commit()
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def flash(response: Response, message: str, kind: str = "ok") -> None:
    """A one-shot message for the next page (after a post-redirect-get)."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(f"{kind}:{message[:300]}"),
        max_age=60,
        path="/",
        httponly=True,
        samesite="strict",
    )


def safe_next(target: str | None, default: str) -> str:
    """A redirect target inside the UI only (no open redirects to other sites)."""
    if (
        target
        and target.startswith(f"{UI}/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return default


def home_of(principal: Principal) -> str:
    """Where a role lands: technicians on their work orders, the others on the fleet."""
    return f"{UI}/my" if principal.role == TECHNICIAN else f"{UI}/fleet"
