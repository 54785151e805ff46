"""Password login with throttling: one function behind `/api/v1/auth/login` and `/ui/login`."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import RateLimitedError, UnauthorizedError
from api.models import ApiToken, User, utcnow
from api.schemas.auth import LoginRequest, TokenIssued, TokenPublic
from api.security import DUMMY_PASSWORD_HASH, hash_token, new_token, verify_password
from api.services import audit
from api.settings import ServerSettings
from api.throttle import LoginThrottle

log = logging.getLogger(__name__)


def throttle_keys(username: str, address: str) -> list[str]:
    """The throttle's keys of an attempt: the name (case-folded, as typed) and the address."""
    return [f"user:{username.casefold()}", f"address:{address}"]


def login(
    session: Session,
    body: LoginRequest,
    *,
    settings: ServerSettings,
    throttle: LoginThrottle,
    address: str,
) -> TokenIssued:
    """A login token for the user; 401 on wrong credentials, 429 while locked out.

    A locked name or address is refused before the password is checked, whether or not the
    user exists, so neither the answer nor its timing tells existing names apart.
    """
    keys = throttle_keys(body.username, address)
    wait = throttle.retry_after(session, keys)
    if wait > 0:
        raise _locked(wait)
    user = session.scalar(sa.select(User).where(User.username == body.username))
    # Verify even for unknown users, so timing does not reveal which names exist.
    valid = verify_password(body.password, user.password_hash if user else DUMMY_PASSWORD_HASH)
    if user is None or not valid or not user.active:
        for lockout in throttle.failed(session, keys):
            kind, _, value = lockout.key.partition(":")
            log.warning(
                "login lockout of %s %r for %.0f s after %d failures",
                kind, value, lockout.seconds, lockout.failures,
            )  # fmt: skip
            audit.record(
                session,
                "system",
                "lockout",
                "login",
                None,
                {kind: value, "seconds": lockout.seconds, "failures": lockout.failures},
            )
        session.commit()
        raise UnauthorizedError(
            "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    throttle.succeeded(session, keys[0])
    secret = new_token()
    token = ApiToken(
        name=f"login:{user.username}",
        token_hash=hash_token(secret),
        role=user.role,
        user_id=user.id,
        expires_at=utcnow() + timedelta(seconds=settings.login_token_ttl_s),
    )
    session.add(token)
    session.flush()
    audit.record(session, f"user:{user.username}", "login", "token", token.id)
    session.commit()
    return TokenIssued.model_validate(
        {**TokenPublic.model_validate(token).model_dump(), "token": secret}
    )


def _locked(wait: float) -> RateLimitedError:
    return RateLimitedError(
        "too many failed logins; try again later",
        headers={"Retry-After": str(math.ceil(wait))},
    )
