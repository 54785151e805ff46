"""Connection settings for InfluxDB, embedded as a section in each service's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class InfluxSettings(BaseModel):
    """Where and how to reach InfluxDB (1.x, 2.x through v1 compatibility, or 3.x)."""

    url: str = Field("http://127.0.0.1:8086", description="Base URL of the server.")
    database: str = Field("equipmon", description="1.x database (or 2.x/3.x DBRP mapping).")
    retention_policy: str = Field("", description="1.x retention policy; empty = default.")
    org: str = Field("equipmon", description="2.x organisation for /api/v2/write.")
    bucket: str = Field("", description="2.x bucket; empty = '<database>/<retention_policy>'.")
    token: SecretStr | None = Field(None, description="2.x/3.x API token (or 'user:pass' on 1.8).")
    username: str = Field("", description="1.x user (basic auth).")
    password: SecretStr | None = Field(None, description="1.x password.")
    api: Literal["auto", "v1", "v2"] = Field(
        "auto",
        description="Write path: 'v2' = /api/v2/write via influxdb-client, 'v1' = /write; "
        "'auto' decides from /ping's X-Influxdb-Version (v2 from 1.8 on).",
    )
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout in seconds.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")

    @model_validator(mode="after")
    def _check(self) -> InfluxSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"influx.url must start with http:// or https://, got {self.url!r}")
        if self.username and self.token is not None:
            raise ValueError("set either influx.token or influx.username/password, not both")
        return self

    @property
    def effective_bucket(self) -> str:
        """The 2.x bucket name; defaults to InfluxDB's v1 mapping '<database>/<rp>'."""
        if self.bucket:
            return self.bucket
        return (
            f"{self.database}/{self.retention_policy}" if self.retention_policy else self.database
        )
