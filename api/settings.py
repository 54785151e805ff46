"""API settings: one pydantic-settings class read from EQUIPMON_API__* variables (nested with '__').

The ``api`` section is ``SERVER`` in the environment (``EQUIPMON_API__SERVER__PORT``), so the
service's name is not repeated; ``DATABASE_URL`` is read too (the name platforms set).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from telemetry.influx.settings import InfluxSettings
from telemetry.settings import EnvName, EquipmonSettings

Severity = Literal["low", "medium", "high", "critical"]


class ServerSettings(BaseModel):
    """How the HTTP server listens and what it accepts from gateways."""

    host: str = Field("0.0.0.0", description="Listen address of `python -m api`.")  # noqa: S104
    port: int = Field(8080, ge=1, le=65535, description="Listen port of `python -m api`.")
    # Each worker is a process with its own engine and pool; nothing shared lives in one
    # (docs/api.md, "Workers"). On SQLite one worker is faster: writers of other processes
    # meet SQLite's polling busy handler instead of the in-process writer queue.
    workers: int = Field(1, ge=1, le=64, description="Worker processes of `python -m api`.")
    # Each SQLite commit waits for an fsync under `full` (~1-4 ms here, with the write lock
    # held: it caps writes near 250-300/s); `normal` (WAL) syncs only at checkpoints, so a
    # power cut or OS crash (not a process crash) may undo the last commits.
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite `PRAGMA synchronous`: full (every commit durable) or normal."
    )
    # Every request looked its bearer token up (a SELECT of token and user, ~0.3 ms of CPU).
    # A revocation, deactivation or role change made through this process clears the cache
    # at once; one made through another worker or replica is seen within this many seconds.
    token_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="Seconds a token's principal is remembered per process (0: look it up "
        "every request); revocations on other workers take effect within it.",
    )
    # Behind a reverse proxy, the client's address and scheme come from X-Forwarded-For and
    # X-Forwarded-Proto, which only a trusted proxy may set (anyone else could forge them).
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="Comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed "
        "(`*` = any); `python -m api` passes it to uvicorn.",
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the dashboard's cookies Secure on every request (behind a TLS proxy "
        "that sends no X-Forwarded-Proto); requests over HTTPS get Secure anyway.",
    )
    # 10,000 readings of ~10 sensors in JSON is about 2.5 MB; 8 MB leaves room for line protocol
    # with long names while bounding what one request can make us hold in memory.
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Gateway body limit.")
    # A gateway batching every second needs 1 request/s; 20/s with a burst of 40 absorbs a
    # backlog flush after an outage without letting one gateway starve the others.
    gateway_rate_per_s: float = Field(20.0, gt=0, description="Sustained pushes/s per gateway.")
    gateway_burst: int = Field(40, ge=1, description="Pushes a gateway may make at once.")
    # Requests alone do not bound the work: 40 bodies of 8 MB are 320 MB to decode at once.
    # 4 MB/s and 20,000 readings/s per gateway are ~100x a 1 s batching gateway's needs, and
    # a burst of 16 MB / 50,000 readings lets a gateway flush an outage's backlog quickly.
    gateway_bytes_per_s: float = Field(
        4 * 1024 * 1024, gt=0, description="Sustained body bytes/s per gateway."
    )
    gateway_bytes_burst: int = Field(
        16 * 1024 * 1024, ge=1024, description="Body bytes a gateway may send at once."
    )
    gateway_readings_per_s: float = Field(
        20_000.0, gt=0, description="Sustained readings/s per gateway."
    )
    gateway_readings_burst: int = Field(
        50_000, ge=1, description="Readings a gateway may push at once."
    )
    # Answered as Retry-After when InfluxDB is down and it gave no delay of its own.
    retry_after_s: int = Field(5, ge=1, description="Retry-After when InfluxDB is unavailable.")
    accept_unregistered_assets: bool = Field(
        False, description="Let gateways push readings for assets not registered in their site."
    )
    migrate_on_startup: bool = Field(True, description="Apply Alembic migrations at startup.")
    # Shelving expiry and post-repair verification are checked this often in the background.
    sweep_interval_s: float = Field(30.0, gt=0, description="Background sweep period (s).")
    login_token_ttl_s: int = Field(12 * 3600, ge=60, description="Lifetime of login tokens.")
    # Login throttling: a user name may fail 5 times and an address (many users behind one NAT)
    # 20, then each further failure locks it for twice as long: 2 s, 4 s ... 15 min, so
    # guessing a password costs days while a mistyping person waits seconds.
    login_free_failures: int = Field(5, ge=1, description="Failed logins per name before lockout.")
    login_free_failures_per_address: int = Field(
        20, ge=1, description="Failed logins per client address before lockout."
    )
    login_lockout_s: float = Field(2.0, gt=0, description="First lockout (s); each one doubles.")
    login_lockout_max_s: float = Field(900.0, gt=0, description="Longest lockout (s).")
    login_forget_after_s: float = Field(
        900.0, gt=0, description="Failures are forgotten after this long without one (s)."
    )
    # Webhook deliveries: polled from the SQL queue, retried with exponential backoff
    # (backoff, 2×, 4×... capped at an hour) and marked failed after the last attempt.
    webhook_poll_interval_s: float = Field(2.0, gt=0, description="Delivery queue poll (s).")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="Timeout of one POST (s).")
    webhook_max_attempts: int = Field(6, ge=1, le=50, description="Attempts before failed.")
    webhook_backoff_s: float = Field(30.0, gt=0, description="Wait after the first failure.")


class PolicySettings(BaseModel):
    """Alert → work-order policy: severity rank + asset criticality rank ≥ min_score opens one."""

    # Ranks: low=1, medium=2, high=3, critical=4. 5 means "high on a medium asset" or
    # "medium on a high asset" and above: low-severity alerts on ordinary assets stay alerts.
    min_score: int = Field(5, ge=2, le=9, description="Open a work order at this score or more.")
    # Hours until due by priority (1 = most urgent).
    due_hours: dict[int, int] = Field(
        default_factory=lambda: {1: 4, 2: 24, 3: 72, 4: 168},
        description="Hours from creation to due date per priority.",
    )
    # A repaired asset whose alert stays normal this long counts as fixed.
    verify_after_s: float = Field(24 * 3600.0, gt=0, description="Quiet time before verified.")
    # Orders opened by alerts go straight to a technician, so nobody has to dispatch them.
    auto_assign: Literal["least_loaded", "none"] = Field(
        "least_loaded",
        description="least_loaded: assign a new alert's work order to the active technician "
        "with the fewest unfinished orders; none: leave it open for someone to claim.",
    )
    pm_poor_hours: float = Field(
        24.0,
        gt=0,
        description="An asset whose health has stayed poor (below 50) this long has its "
        "meter-based PM plans fall due earlier (by pm_min_factor at worst).",
    )
    pm_min_factor: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The most a poor condition can shorten a meter interval: health h (< 50) "
        "makes it max(h / 50, pm_min_factor) of its length.",
    )
    pm_merge_days: float = Field(
        7.0,
        ge=0,
        description="A corrective order on the same asset and failure mode completed this "
        "recently counts as a due PM plan's work: no second visit.",
    )


class SmtpSettings(BaseModel):
    """The SMTP server notifications are sent through."""

    host: str = Field("127.0.0.1", description="SMTP server host.")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port (587 STARTTLS, 465 TLS).")
    security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, starttls (upgrade after connecting) or tls (implicit TLS)."
    )
    username: str | None = Field(None, description="SMTP AUTH user (unset: no AUTH).")
    password: SecretStr | None = Field(None, description="SMTP AUTH password.")
    from_address: str = Field("equipmon@localhost", description="From: of notification mail.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one SMTP session (s).")


class NotifySettings(BaseModel):
    """Notifications: the outbox worker, escalation timing, floods, retries and action links."""

    enabled: bool = Field(True, description="Run the notification worker in this process.")
    poll_interval_s: float = Field(2.0, gt=0, description="Notification worker period (s).")
    # Rules count in minutes (escalate after 15 minutes); tests make a minute last 0.1 s.
    minute_s: float = Field(60.0, gt=0, description="Length of a rule's minute (s).")
    # ISA-18.2 flood handling: after a recipient's first alert message, the ones that follow
    # within the window are held and sent as one summary once the window passes without a
    # new one (or flood_max_hold_s after the first held one). Critical alerts are never held.
    flood_window_s: float = Field(60.0, gt=0, description="Flood window per recipient (s).")
    flood_max_hold_s: float = Field(600.0, gt=0, description="Longest hold in a flood (s).")
    max_attempts: int = Field(10, ge=1, le=100, description="Delivery attempts before dead.")
    backoff_s: float = Field(30.0, gt=0, description="Wait after the first failure (doubles).")
    backoff_max_s: float = Field(3600.0, gt=0, description="Longest wait between attempts (s).")
    chat_timeout_s: float = Field(5.0, gt=0, le=60, description="Timeout of one chat POST (s).")
    link_ttl_s: float = Field(24 * 3600.0, gt=0, description="Lifetime of an action link (s).")
    link_secret: SecretStr | None = Field(
        None,
        description="HMAC key that signs action links; the same on every replica. Unset: a "
        "random key per process (links stop working when it restarts).",
    )
    public_url: str = Field(
        "http://localhost:8080", description="Base URL of the API in links people click."
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Telegram Bot API base (a channel may override)."
    )
    zalo_api_url: str = Field(
        "https://openapi.zalo.me/v3.0/oa/message/cs",
        description="Zalo OA message endpoint (a channel may override).",
    )
    retention_days: float = Field(
        90.0,
        gt=0,
        description="Delivered messages, handled events and expired links are "
        "deleted this long after (dead messages stay until retried or deleted).",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("public_url")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return value.rstrip("/")


class RequestSettings(BaseModel):
    """Work requests from people without accounts: the label URL, size and rate limits."""

    public_url: str | None = Field(
        None,
        description="Base URL printed in QR labels and requesters' status links (what a phone "
        "on the site's network reaches); unset: notify.public_url.",
    )
    # Phone photos are 2-5 MB; 8 MB takes any of them and refuses a video or a dump.
    max_photo_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest photo a request may carry (bytes)."
    )
    max_text_chars: int = Field(
        2000, ge=100, le=20000, description="Longest description a request may carry."
    )
    # A front desk reporting a bad morning files a handful; 5 at once and 20 an hour from one
    # client address stop a script without bothering a person (each request is a person's
    # problem to triage). Per asset: a broken lobby machine seen by many guests.
    client_burst: int = Field(5, ge=1, description="Requests one client may file at once.")
    client_per_hour: float = Field(20.0, gt=0, description="Sustained requests/hour per client.")
    asset_burst: int = Field(10, ge=1, description="Requests one asset may get at once.")
    asset_per_hour: float = Field(30.0, gt=0, description="Sustained requests/hour per asset.")
    default_language: Literal["en", "vi"] = Field(
        "en", description="Language of public pages when Accept-Language names none we have."
    )

    @field_validator("public_url")
    @classmethod
    def _no_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/")


class Settings(EquipmonSettings):
    """Everything the API needs; built from the environment unless passed to create_app."""

    env_service = "api"
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: Annotated[str, EnvName(also=("DATABASE_URL",))] = Field(
        "sqlite:///var/equipmon.db",
        description="SQLAlchemy URL; plain postgresql:// uses the psycopg 3 driver.",
    )
    api: Annotated[ServerSettings, EnvName(segment="server")] = Field(
        default_factory=ServerSettings
    )
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    requests: RequestSettings = Field(default_factory=RequestSettings)
    admin_token: SecretStr | None = Field(None, description="Bootstrap admin bearer token.")
    service_token: SecretStr | None = Field(None, description="Bootstrap service bearer token.")
    gateway_token: SecretStr | None = Field(None, description="Bootstrap gateway bearer token.")
    gateway_site: str | None = Field(
        None,
        description="Site code the bootstrap gateway token may write (required: unset, it "
        "may write none).",
    )

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith(("sqlite", "postgresql+")):
            raise ValueError(f"database_url must be sqlite:// or postgresql://, got {value!r}")
        return value

    @field_validator("admin_token", "service_token", "gateway_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Bootstrap tokens are hashed with plain sha256, which is only safe for random secrets.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("bootstrap tokens must be at least 16 characters of random text")
        return value
