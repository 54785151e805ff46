"""The FastAPI app: `create_app(settings)` wires the SQL engine and InfluxDB in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from api import logs, migrate, problems, web
from api.db import make_engine, make_sessionmaker
from api.deps import document_roles
from api.metrics import Metrics
from api.middleware import MetricsMiddleware, SecureCookieMiddleware
from api.models import utcnow
from api.ratelimit import RateLimiter
from api.routes import (
    action_links,
    alerts,
    asset_status,
    assets,
    health,
    labels,
    notifications,
    on_call,
    pm,
    readings,
    reports,
    requests,
    sites,
    tokens,
    users,
    webhooks,
    work_orders,
)
from api.schemas.common import Problem
from api.services.notify import fanout
from api.services.notify.worker import tick as notify_tick
from api.services.sweeps import sweep
from api.services.webhooks import deliver_due
from api.settings import Settings
from api.state import AppState, bootstrap_principals, link_secret, login_throttle
from api.tokencache import TokenCache
from telemetry.influx.client import InfluxClient

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
DESCRIPTION = """Equipment maintenance monitoring: assets, gateway pushes of readings, alerts with
an ISA-18.2 lifecycle, and work orders. Every call needs a bearer token (`Authorization: Bearer
...`) of a role the route allows; errors are RFC 9457 problem details."""


async def _every(
    interval_s: float, stop: asyncio.Event, work: Callable[[], object], what: str
) -> None:
    """Run blocking ``work`` in the threadpool every ``interval_s`` until ``stop`` is set.

    Stopping waits for a run in progress: a cancelled await would leave its thread holding a
    database connection while the engine is disposed.
    """
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if stop.is_set():
            return
        try:
            await run_in_threadpool(work)
        except Exception:
            log.exception("%s failed; retrying next period", what)


def _background_tasks(state: AppState, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    api = state.settings.api
    # Shelving expiry and post-repair verification need a clock, not a request, to happen.
    sweeper = _every(
        api.sweep_interval_s, stop,
        lambda: sweep(state.sessions, state.settings.policy, utcnow()), "background sweep",
    )  # fmt: skip
    # Webhook deliveries leave from the SQL queue here, off the request path.
    deliverer = _every(
        api.webhook_poll_interval_s, stop,
        lambda: deliver_due(state.sessions, api), "webhook delivery",
    )  # fmt: skip
    tasks = [asyncio.create_task(sweeper), asyncio.create_task(deliverer)]
    notify = state.settings.notify
    if notify.enabled:
        # Notifications: fan-out, escalation, floods and the outbox, off the request path.
        config = fanout.Config(notify, state.link_secret)
        notifier = _every(
            notify.poll_interval_s, stop,
            lambda: notify_tick(state.sessions, config, state.metrics, state.notify_health),
            "notification worker",
        )  # fmt: skip
        tasks.append(asyncio.create_task(notifier))
    return tasks


@functools.cache
def _routers() -> tuple[tuple[APIRouter, str], ...]:
    """Every router of the app with its prefix, once per process (their roles documented).

    Included into the app one level deep: FastAPI matches a request by walking the included
    routers, and a nested one is walked again at each level (a root router holding a `/api/v1`
    router holding the resources made route matching ~10 % of a request's CPU, session 11).
    """
    routers = [sites, assets, readings, alerts, asset_status, work_orders, pm, reports]
    routers += [users, tokens, webhooks, notifications, on_call, action_links, requests, labels]
    for module in routers:
        document_roles(module.router)
    return (
        (health.router, ""),
        *((module.router, PREFIX) for module in routers),
        (web.router, ""),
    )


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] | None = None
) -> FastAPI:
    """Build the app; settings default to the environment (EQUIPMON_API__*, DATABASE_URL).

    ``clock`` (seconds) times login lockouts and rate limits; tests pass one they move. By
    default rate limits (per process) use the monotonic clock and login lockouts (in the
    database, shared by every process and host) the wall clock.
    """
    config = settings or Settings()
    metrics = Metrics()
    limits_clock = clock or time.monotonic

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.api.migrate_on_startup:
            await run_in_threadpool(migrate.upgrade, config.database_url)
        engine = make_engine(
            config.database_url, sqlite_synchronous=config.api.sqlite_synchronous.upper()
        )
        sessions = make_sessionmaker(engine)
        token_cache = TokenCache(config.api.token_cache_s)
        token_cache.track(sessions)
        state = AppState(
            settings=config,
            engine=engine,
            sessions=sessions,
            token_cache=token_cache,
            read_sessions=make_sessionmaker(engine, read_only=True),
            influx=InfluxClient(config.influx, pool_size=16),
            limiter=RateLimiter(
                config.api.gateway_rate_per_s, config.api.gateway_burst, limits_clock
            ),
            byte_limiter=RateLimiter(
                config.api.gateway_bytes_per_s, config.api.gateway_bytes_burst, limits_clock
            ),
            reading_limiter=RateLimiter(
                config.api.gateway_readings_per_s, config.api.gateway_readings_burst, limits_clock
            ),
            request_limiter=RateLimiter(
                config.requests.client_per_hour / 3600, config.requests.client_burst, limits_clock
            ),
            request_target_limiter=RateLimiter(
                config.requests.asset_per_hour / 3600, config.requests.asset_burst, limits_clock
            ),
            metrics=metrics,
            login_throttle=login_throttle(config, clock or time.time),
            bootstrap=bootstrap_principals(config),
            link_secret=link_secret(config),
        )
        app.state.equipmon = state
        stop = asyncio.Event()
        tasks = _background_tasks(state, stop)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            state.influx.close()
            engine.dispose()

    app = FastAPI(
        title="equipmon API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={
            401: {"model": Problem, "description": "No valid bearer token."},
            403: {"model": Problem, "description": "The token's role may not do this."},
            404: {"model": Problem, "description": "No such resource (or not visible to you)."},
            409: {"model": Problem, "description": "Conflicts with the current state."},
            422: {"model": Problem, "description": "Invalid request."},
        },
    )
    problems.install(app)
    # Inside the metrics middleware, so a crash is counted with the 500 it was answered with.
    app.add_middleware(problems.CrashMiddleware)
    app.add_middleware(SecureCookieMiddleware, always=config.api.secure_cookies)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router, prefix in _routers():
        app.include_router(router, prefix=prefix)
    app.mount("/ui/static", StaticFiles(directory=web.STATIC_DIR), name="ui-static")
    _problem_openapi(app)
    return app


def _problem_openapi(app: FastAPI) -> None:
    """Document every error response as application/problem+json with the Problem schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if status[0] in "45":
                        # A route that also answers browsers with a page keeps its text/html.
                        html = response.get("content", {}).get("text/html")
                        response["content"] = {"application/problem+json": {"schema": problem_ref}}
                        if html is not None:
                            response["content"]["text/html"] = html
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def worker_app() -> FastAPI:
    """The app of one worker process of `python -m api serve --workers N` (uvicorn's
    factory): logs configured and settings read from the environment, as in the parent."""
    logs.configure()
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # `api.main:app` for uvicorn, built on first access so importing this module reads no env.
    if name == "app":
        return create_app()
    raise AttributeError(name)
