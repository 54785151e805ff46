"""Dependencies: app state, SQL sessions, the caller's identity, and role checks per route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ForbiddenError, UnauthorizedError
from api.models import ApiToken, User, utcnow
from api.security import Principal, hash_token
from api.settings import Settings
from api.state import AppState
from telemetry.influx.client import InfluxClient

ADMIN, FACILITIES, TECHNICIAN, GATEWAY, SERVICE = (
    "admin",
    "facilities",
    "technician",
    "gateway",
    "service",
)
ALL_ROLES = (ADMIN, FACILITIES, TECHNICIAN, GATEWAY, SERVICE)

_bearer = HTTPBearer(auto_error=False, description="An API token or a login token.")


def get_state(request: Request) -> AppState:
    """The state the lifespan wired."""
    state: AppState = request.app.state.equipmon
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn puts the proxy's X-Forwarded-For there when the
    peer is a trusted proxy: `api.trusted_proxies`)."""
    return request.client.host if request.client else "unknown"


def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


def get_sessions(state: StateDep) -> sessionmaker[Session]:
    """The session factory (for work that replays transactions on races)."""
    return state.sessions


# Methods whose routes only read: they get a read-only session (api.db.make_sessionmaker).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_read_session(state: StateDep) -> Iterator[Session]:
    """The request's read-only session: the token lookup's, and a GET route's own."""
    with state.read_sessions() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def get_session(state: StateDep, request: Request, read: ReadSessionDep) -> Iterator[Session]:
    """A session for this request; routes commit explicitly, anything else is rolled back.

    GET (and HEAD, OPTIONS) requests get the read-only one the token was looked up in (one
    session, one connection per request): they never wait for writers.
    """
    if request.method in READ_METHODS:
        yield read
        return
    with state.sessions() as session:
        yield session


def get_influx(state: StateDep) -> InfluxClient:
    """The InfluxDB client."""
    return state.influx


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
InfluxDep = Annotated[InfluxClient, Depends(get_influx)]


def get_principal(
    state: StateDep,
    request: Request,
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its bearer token; 401 without a valid one."""
    if credentials is None:
        raise UnauthorizedError("a bearer token is required", headers=_CHALLENGE)
    try:
        return principal_of_token(state, session, credentials.credentials)
    finally:
        if request.method not in READ_METHODS and session.in_transaction():
            session.rollback()  # a writing route has its own session: give the connection back


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def principal_of_token(state: AppState, session: Session, secret: str) -> Principal:
    """The principal of a bearer secret, looked up in session; 401 if it is not valid."""
    digest = hash_token(secret)
    if digest in state.bootstrap:
        return state.bootstrap[digest]
    row = session.execute(
        sa.select(ApiToken, User)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if row is None:
        raise UnauthorizedError("unknown token", headers=_CHALLENGE)
    token, user = row
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise UnauthorizedError("the token is revoked or expired", headers=_CHALLENGE)
    if user is not None:
        if not user.active:
            raise UnauthorizedError("the user is deactivated", headers=_CHALLENGE)
        # A token issued for a user keeps its own site binding: for a gateway-role user it is
        # the only site the token may write (a login token has none, so it may write nothing).
        return Principal(
            user.role, f"user:{user.username}", user.id, site_id=token.site_id, token_id=token.id
        )
    return Principal(token.role, f"token:{token.name}", site_id=token.site_id, token_id=token.id)


class RoleCheck:
    """A dependency that lets only the given roles through (403 for the others).

    Every protected route declares one; the role-matrix test finds them through the app.
    """

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        """Return the caller if its role is allowed."""
        if principal.role not in self.roles:
            raise ForbiddenError(
                f"role {principal.role!r} may not do this; allowed: {', '.join(sorted(self.roles))}"
            )
        return principal


def declared_roles(route: APIRoute) -> frozenset[str] | None:
    """The roles of the RoleCheck a route depends on (None for a public route)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if isinstance(dependency.call, RoleCheck):
            return dependency.call.roles
        pending.extend(dependency.dependencies)
    return None


def document_roles(router: APIRouter) -> None:
    """Publish each route's roles in OpenAPI as `x-roles` (absent = no token needed)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            roles = declared_roles(route)
            if roles is not None:
                route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": sorted(roles)}


# The role sets routes declare, named for who they serve.
Admin = Annotated[Principal, Depends(RoleCheck(ADMIN))]
Staff = Annotated[Principal, Depends(RoleCheck(ADMIN, FACILITIES))]
Crew = Annotated[Principal, Depends(RoleCheck(ADMIN, FACILITIES, TECHNICIAN))]
Reader = Annotated[Principal, Depends(RoleCheck(ADMIN, FACILITIES, TECHNICIAN, SERVICE))]
Service = Annotated[Principal, Depends(RoleCheck(ADMIN, SERVICE))]
Gateway = Annotated[Principal, Depends(RoleCheck(GATEWAY))]
Anyone = Annotated[Principal, Depends(RoleCheck(*ALL_ROLES))]
