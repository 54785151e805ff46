"""Dependencies: app state, SQL sessions, the caller's identity, and role checks per route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
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


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the
# thread pool, one hop (and one wait for a thread and the GIL) each, and a request had eight
# of them; now a request makes one hop, for its route (issue 20).


async def get_state(request: Request) -> AppState:
    """The state the lifespan wired."""
    state: AppState = request.app.state.equipmon
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn puts the proxy's X-Forwarded-For there when the
    peer is a trusted proxy: `api.trusted_proxies`)."""
    return request.client.host if request.client else "unknown"


async def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


async def get_sessions(state: StateDep) -> sessionmaker[Session]:
    """The session factory (for work that replays transactions on races)."""
    return state.sessions


# Methods whose routes only read: they get a read-only session (api.db.make_sessionmaker).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Where the request's read session is kept for helpers that have only the request (pages).
READ_SESSION = "equipmon_read_session"


async def _close(state: AppState, session: Session, *, read: bool = False) -> None:
    # Making a session does no I/O (it connects on first use); closing one that is in a
    # transaction rolls it back: in-process and microseconds on SQLite, a round trip to
    # PostgreSQL (which is not for the event loop), except for a read session, which runs
    # in autocommit there (api.db.make_sessionmaker): its rollback sends nothing.
    if session.in_transaction() and not read and state.engine.dialect.name != "sqlite":
        await run_in_threadpool(session.close)
    else:
        session.close()


async def get_read_session(state: StateDep, request: Request) -> AsyncIterator[Session]:
    """The request's read-only session: the token lookup's, and a GET route's own."""
    session = state.read_sessions()
    setattr(request.state, READ_SESSION, session)
    try:
        yield session
    finally:
        delattr(request.state, READ_SESSION)
        await _close(state, session, read=True)


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


async def get_session(
    state: StateDep, request: Request, read: ReadSessionDep
) -> AsyncIterator[Session]:
    """A session for this request; routes commit explicitly, anything else is rolled back.

    GET (and HEAD, OPTIONS) requests get the read-only one the token was looked up in (one
    session, one connection per request): they never wait for writers.
    """
    if request.method in READ_METHODS:
        yield read
        return
    session = state.sessions()
    try:
        yield session
    finally:
        await _close(state, session)


async def get_influx(state: StateDep) -> InfluxClient:
    """The InfluxDB client."""
    return state.influx


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
InfluxDep = Annotated[InfluxClient, Depends(get_influx)]


async def get_principal(
    state: StateDep,
    request: Request,
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its bearer token; 401 without a valid one."""
    if credentials is None:
        raise UnauthorizedError("a bearer token is required", headers=_CHALLENGE)
    known = cached_principal(state, credentials.credentials)
    if known is not None:
        return known

    def look_up() -> Principal:
        try:
            return principal_of_token(state, session, credentials.credentials)
        finally:
            if request.method not in READ_METHODS and session.in_transaction():
                session.rollback()  # a writing route has its own session: free the connection

    return await run_in_threadpool(look_up)


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def cached_principal(state: AppState, secret: str) -> Principal | None:
    """The principal of a bootstrap token or of one looked up in the last seconds, else None
    (no I/O: for the event loop)."""
    digest = hash_token(secret)
    return state.bootstrap.get(digest) or state.token_cache.get(digest, utcnow())


def principal_of_token(state: AppState, session: Session, secret: str) -> Principal:
    """The principal of a bearer secret, looked up in session; 401 if it is not valid."""
    digest = hash_token(secret)
    if digest in state.bootstrap:
        return state.bootstrap[digest]
    known = state.token_cache.get(digest, utcnow())
    if known is not None:
        return known
    generation = state.token_cache.generation
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
        principal = Principal(
            user.role, f"user:{user.username}", user.id, site_id=token.site_id, token_id=token.id
        )
    else:
        principal = Principal(
            token.role, f"token:{token.name}", site_id=token.site_id, token_id=token.id
        )
    state.token_cache.put(digest, principal, token.expires_at, generation)
    return principal


class RoleCheck:
    """A dependency that lets only the given roles through (403 for the others).

    Every protected route declares one; the role-matrix test finds them through the app.
    """

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        """Return the caller if its role is allowed."""
        return self.check(principal)

    def check(self, principal: Principal) -> Principal:
        """The principal if its role is allowed; ForbiddenError otherwise."""
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
