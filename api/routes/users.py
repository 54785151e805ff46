"""Users (people who log in) and the audit log; managed by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.crud import conflicts_as_409, get_or_404
from api.deps import Admin, Anyone, SessionDep
from api.errors import NotFoundError
from api.models import ApiToken, AuditEntry, User, utcnow
from api.pagination import Limit, Offset, PathId, QueryId, QueryText, paginate
from api.schemas.auth import UserCreate, UserPublic, UserUpdate
from api.schemas.common import Page, PublicSchema, Role
from api.security import hash_password
from api.services import audit

router = APIRouter(tags=["users"])


class AuditPublic(PublicSchema):
    """One audit entry."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    changes: dict[str, Any]


@router.get("/users", summary="List users")
def list_users(
    session: SessionDep,
    _: Admin,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    role: Annotated[Role | None, Query()] = None,
) -> Page[UserPublic]:
    """Users by name, optionally of one role."""
    stmt = sa.select(User).order_by(User.username)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return paginate(session, stmt, UserPublic, limit, offset)


@router.post("/users", status_code=201, summary="Create a user")
def create_user(body: UserCreate, session: SessionDep, principal: Admin) -> UserPublic:
    """A new user (409 if the name is taken)."""
    user = User(
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        password_hash=hash_password(body.password),
    )
    with conflicts_as_409(f"user {body.username!r}"):
        session.add(user)
        session.flush()
        audit.record(
            session,
            principal.actor,
            "create",
            "user",
            user.id,
            body.model_dump(exclude={"password"}),
        )
        session.commit()
    return UserPublic.model_validate(user)


@router.get("/users/me", summary="Who am I")
def me(session: SessionDep, principal: Anyone) -> UserPublic:
    """The calling user (404 for machine tokens, which are no user)."""
    if principal.user_id is None:
        raise NotFoundError(f"{principal.actor} is a machine token, not a user")
    return UserPublic.model_validate(get_or_404(session, User, principal.user_id))


@router.get("/users/{user_id}", summary="Get a user")
def get_user(user_id: PathId, session: SessionDep, _: Admin) -> UserPublic:
    """One user."""
    return UserPublic.model_validate(get_or_404(session, User, user_id))


@router.patch("/users/{user_id}", summary="Change a user")
def update_user(
    user_id: PathId, body: UserUpdate, session: SessionDep, principal: Admin
) -> UserPublic:
    """Change role, name, password, or deactivate (which also stops their tokens).

    A new password revokes the user's login tokens (browser sessions included): whoever knew
    the old one is logged out. Tokens an admin issued for the user stay valid.
    """
    user = get_or_404(session, User, user_id, lock=True)
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        changes["password"] = "(changed)"  # noqa: S105 (audit marker)
        changes["login_tokens_revoked"] = _revoke_login_tokens(session, user)
    for name, value in changes.items():
        if name not in ("password", "login_tokens_revoked"):
            setattr(user, name, value)
    audit.record(session, principal.actor, "update", "user", user.id, changes)
    session.commit()
    return UserPublic.model_validate(user)


def _revoke_login_tokens(session: Session, user: User) -> int:
    """Revoke the user's unrevoked login tokens; how many."""
    result = session.execute(
        sa.update(ApiToken)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.name == f"login:{user.username}",
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return cast(sa.CursorResult[Any], result).rowcount


@router.get("/audit", summary="The audit log")
def audit_log(
    session: SessionDep,
    _: Admin,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    entity: QueryText = None,
    entity_id: QueryId = None,
    actor: QueryText = None,
) -> Page[AuditPublic]:
    """Who changed what, newest first."""
    stmt = sa.select(AuditEntry).order_by(AuditEntry.id.desc())
    for column, value in (
        (AuditEntry.entity, entity),
        (AuditEntry.entity_id, entity_id),
        (AuditEntry.actor, actor),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, AuditPublic, limit, offset)
