"""API tokens (machine and user) and login with a password."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response

from api.crud import get_or_404
from api.deps import Admin, SessionDep, StateDep, client_address
from api.errors import InvalidError
from api.models import ApiToken, Site, User, utcnow
from api.pagination import Limit, Offset, PathId, paginate
from api.schemas.auth import LoginRequest, TokenCreate, TokenIssued, TokenPublic
from api.schemas.common import Page, Problem
from api.security import hash_token, new_token
from api.services import audit
from api.services import login as login_service

router = APIRouter(tags=["tokens"])


@router.post(
    "/auth/login",
    summary="Exchange a password for a bearer token",
    responses={
        429: {
            "model": Problem,
            "description": "Too many failed logins for this name or address; see Retry-After.",
        }
    },
)
def login(
    body: LoginRequest, request: Request, session: SessionDep, state: StateDep
) -> TokenIssued:
    """A token for the user, valid for the configured time (401 on wrong credentials).

    Failures are throttled per user name and per client address: after a few, each locks
    them out for longer (429 with Retry-After), whether or not the name exists.
    """
    return login_service.login(
        session,
        body,
        settings=state.settings.api,
        throttle=state.login_throttle,
        address=client_address(request),
    )


@router.get("/tokens", summary="List tokens")
def list_tokens(
    session: SessionDep, _: Admin, *, limit: Limit = 50, offset: Offset = 0
) -> Page[TokenPublic]:
    """Tokens' metadata (never their secrets)."""
    return paginate(session, sa.select(ApiToken).order_by(ApiToken.id), TokenPublic, limit, offset)


@router.post("/tokens", status_code=201, summary="Issue a token")
def create_token(body: TokenCreate, session: SessionDep, principal: Admin) -> TokenIssued:
    """A machine token (gateways must be bound to a site) or a token for a user.

    The secret is in the answer only: it is stored as a hash.
    """
    role: str | None = body.role
    if body.user_id is not None:
        user = get_or_404(session, User, body.user_id)
        if role not in (None, user.role):
            raise InvalidError("a user's token has the user's role", where="role")
        role = user.role
    if role is None:
        raise InvalidError("give 'role' (machine token) or 'user_id'", where="role")
    if role == "gateway" and body.site_id is None:
        raise InvalidError("gateway tokens are bound to a site: give 'site_id'", where="site_id")
    if body.site_id is not None:
        if role != "gateway":
            raise InvalidError("only gateway tokens are bound to a site", where="site_id")
        get_or_404(session, Site, body.site_id)
    secret = new_token()
    token = ApiToken(
        name=body.name,
        token_hash=hash_token(secret),
        role=role,
        user_id=body.user_id,
        site_id=body.site_id,
        expires_at=body.expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session, principal.actor, "create", "token", token.id, {"name": body.name, "role": role}
    )
    session.commit()
    return TokenIssued.model_validate(
        {**TokenPublic.model_validate(token).model_dump(), "token": secret}
    )


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
def revoke_token(token_id: PathId, session: SessionDep, principal: Admin) -> Response:
    """Revoke a token at once (kept for the audit trail)."""
    token = get_or_404(session, ApiToken, token_id, lock=True)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, principal.actor, "revoke", "token", token.id)
        session.commit()
    return Response(status_code=204)
