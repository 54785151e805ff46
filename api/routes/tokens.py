"""API tokens (machine and user) and login with a password."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Response

from api.crud import get_or_404
from api.deps import Admin, SessionDep, SettingsDep
from api.errors import InvalidError, UnauthorizedError
from api.models import ApiToken, Site, User, utcnow
from api.pagination import Limit, Offset, PathId, paginate
from api.schemas.auth import LoginRequest, TokenCreate, TokenIssued, TokenPublic
from api.schemas.common import Page
from api.security import DUMMY_PASSWORD_HASH, hash_token, new_token, verify_password
from api.services import audit

router = APIRouter(tags=["tokens"])


@router.post("/auth/login", summary="Exchange a password for a bearer token")
def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> TokenIssued:
    """A token for the user, valid for the configured time (401 on wrong credentials)."""
    user = session.scalar(sa.select(User).where(User.username == body.username))
    # Verify even for unknown users, so timing does not reveal which names exist.
    valid = verify_password(body.password, user.password_hash if user else DUMMY_PASSWORD_HASH)
    if user is None or not valid or not user.active:
        raise UnauthorizedError(
            "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    secret = new_token()
    token = ApiToken(
        name=f"login:{user.username}",
        token_hash=hash_token(secret),
        role=user.role,
        user_id=user.id,
        expires_at=utcnow() + timedelta(seconds=settings.api.login_token_ttl_s),
    )
    session.add(token)
    session.flush()
    audit.record(session, f"user:{user.username}", "login", "token", token.id)
    session.commit()
    return TokenIssued.model_validate(
        {**TokenPublic.model_validate(token).model_dump(), "token": secret}
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
