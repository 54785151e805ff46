"""Settings of the live detector service (``python -m analytics run``), read from the environment.

Environment variables use the ``EQUIPMON_`` prefix and ``__`` for nesting, e.g.
``EQUIPMON_API__URL``, ``EQUIPMON_INFLUX__URL``, ``EQUIPMON_SERVICE_TOKEN``, ``EQUIPMON_TICK_S``.
Tests build ``ServiceSettings(...)`` directly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telemetry.influx.settings import InfluxSettings


class ApiSettings(BaseModel):
    """Where the equipmon API is and how alert posts are retried."""

    url: str = Field("http://127.0.0.1:8080", description="Base URL of the API (no /api/v1).")
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout.")
    retry_min_s: float = Field(0.5, gt=0, description="First retry delay (doubling).")
    retry_max_s: float = Field(30.0, gt=0, description="Retry delay cap.")
    outbox_max: int = Field(
        10_000, ge=1, description="Alert posts kept while the API is down (oldest go first)."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"api.url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


class ServiceSettings(BaseSettings):
    """Everything the detector service needs; components take their own section."""

    model_config = SettingsConfigDict(
        env_prefix="EQUIPMON_", env_nested_delimiter="__", extra="ignore"
    )

    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    service_token: SecretStr | None = Field(
        None, description="Bearer token of role 'service' for POST /api/v1/alerts."
    )
    measurement: str = Field("telemetry", min_length=1, description="InfluxDB measurement.")
    tick_s: float = Field(10.0, gt=0, description="Seconds between two reads of new points.")
    train_after_s: float = Field(
        3600.0,
        gt=0,
        description="Span of an asset's first data that is fitted as its normal baseline "
        "before the asset is scored.",
    )
    lookback_s: float | None = Field(
        None,
        gt=0,
        description="How far back the first tick reads (default: train_after_s plus one tick, "
        "so a restarted service refits from recent history).",
    )
    lateness_s: float = Field(
        30.0,
        ge=0,
        description="Each tick re-reads this much before the newest point seen, so points "
        "that arrive a little late (collector spool, gateway batches) are still scored once.",
    )
    data_dir: Path = Field(
        Path("var/analytics"),
        description="Folder reserved for persisted state; nothing is kept there yet (a "
        "restarted service refits each asset from lookback_s of history instead).",
    )
    http_host: str = Field("127.0.0.1", description="Listen address of /healthz and /metrics.")
    http_port: int = Field(9102, ge=0, le=65535, description="0 = an ephemeral port.")

    @model_validator(mode="after")
    def _check(self) -> ServiceSettings:
        if self.lateness_s >= self.train_after_s:
            raise ValueError("lateness_s must be shorter than train_after_s")
        return self

    @property
    def effective_lookback_s(self) -> float:
        """Seconds the first tick reads back."""
        return self.lookback_s if self.lookback_s is not None else self.train_after_s + self.tick_s
