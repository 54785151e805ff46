"""What the lifespan wires once per app: settings, SQL engine and sessions, InfluxDB, limits."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from api.fragments import FragmentCache
from api.listing import CountCache, PageCache
from api.metrics import Metrics
from api.ratelimit import RateLimiter
from api.security import Principal, hash_token
from api.services.notify.worker import Health
from api.settings import Settings
from api.throttle import LoginThrottle
from api.tokencache import TokenCache
from telemetry import FastCodec
from telemetry.influx.client import InfluxClient

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Collaborators shared by every request (reached through `api.deps`)."""

    settings: Settings
    engine: sa.Engine
    sessions: sessionmaker[Session]
    # Sessions that only read (GET requests, token lookups): on SQLite they never wait for the
    # write lock (api.db.make_sessionmaker).
    read_sessions: sessionmaker[Session]
    influx: InfluxClient
    limiter: RateLimiter
    # Gateway pushes are also limited by what they cost: body bytes and readings.
    byte_limiter: RateLimiter
    reading_limiter: RateLimiter
    metrics: Metrics
    login_throttle: LoginThrottle
    # Token → principal for api.tokencache's few seconds (cleared by this process's writes).
    token_cache: TokenCache
    # Totals of list pages by ETag (api.listing): a count is made once per table change.
    counts: CountCache = field(default_factory=CountCache)
    # Bodies of list pages by ETag (api.listing): a page is made once per table change.
    pages: PageCache = field(default_factory=PageCache)
    # Live fragments the same for every viewer (api.fragments, api.web.render).
    fragments: FragmentCache = field(default_factory=FragmentCache)
    # Public work requests: per client address and per asset (or site-wide page).
    request_limiter: RateLimiter | None = None
    request_target_limiter: RateLimiter | None = None
    bootstrap: dict[str, Principal] = field(default_factory=dict)
    # The HMAC key of action links, and which notification channels are failing now.
    link_secret: bytes = b""
    notify_health: Health = field(default_factory=Health)
    # Gateway pushes: the collector's fast codec (its caches are per process; any thread may
    # use it, see telemetry/codecs/fastpath.py).
    codec: FastCodec = field(default_factory=FastCodec)


def login_throttle(settings: Settings, clock: Callable[[], float]) -> LoginThrottle:
    """The login throttle the settings describe."""
    api = settings.api
    return LoginThrottle(
        free_failures={
            "user": api.login_free_failures,
            "address": api.login_free_failures_per_address,
        },
        base_delay_s=api.login_lockout_s,
        max_delay_s=api.login_lockout_max_s,
        forget_after_s=api.login_forget_after_s,
        clock=clock,
    )


def bootstrap_principals(settings: Settings) -> dict[str, Principal]:
    """Principals of the tokens given in the environment, keyed by the tokens' sha256."""
    found: dict[str, Principal] = {}
    if settings.gateway_token is not None and settings.gateway_site is None:
        log.warning(
            "EQUIPMON_API__GATEWAY_TOKEN is set without EQUIPMON_API__GATEWAY_SITE: its pushes are "
            "refused"
        )
    for role, secret in (
        ("admin", settings.admin_token),
        ("service", settings.service_token),
        ("gateway", settings.gateway_token),
    ):
        if secret is not None:
            site = settings.gateway_site if role == "gateway" else None
            found[hash_token(secret.get_secret_value())] = Principal(
                role=role, actor=f"bootstrap-{role}", site_code=site
            )
    return found


def link_secret(settings: Settings) -> bytes:
    """The action-link key: configured, or random for this process (with a warning)."""
    if settings.notify.link_secret is not None:
        return settings.notify.link_secret.get_secret_value().encode()
    log.warning(
        "EQUIPMON_API__NOTIFY__LINK_SECRET is unset: action links are signed with a random key and "
        "stop working when this process restarts (and on other replicas)"
    )
    return secrets.token_bytes(32)
