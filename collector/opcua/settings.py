"""Configuration of OPC UA servers: one entry per server, groups of monitored items in each."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator


class OpcUaNodeSettings(BaseModel):
    """One node read as one sensor of one asset."""

    node_id: str = Field(
        description="ns=<index>;s=<id>, or nsu=<namespace URI>;s=<id> (stable across servers)"
    )
    asset: str
    sensor: str


class OpcUaGroupSettings(BaseModel):
    """Monitored items that share a sampling and publishing interval (one subscription)."""

    name: str = "default"
    sampling_interval_ms: float = Field(1000.0, gt=0, description="how often the server samples")
    publishing_interval_ms: float = Field(
        1000.0, gt=0, description="how often the server sends what changed"
    )
    queue_size: int = Field(10, ge=1, description="samples the server keeps per item between sends")
    nodes: list[OpcUaNodeSettings] = Field(default_factory=list)
    browse: str | None = Field(
        None,
        description="a browse path below Objects (e.g. '2:plant-a'): each object below it is an "
        "asset (its browse name), each of its numeric variables a sensor",
    )

    @model_validator(mode="after")
    def _something(self) -> OpcUaGroupSettings:
        if not self.nodes and not self.browse:
            raise ValueError(f"OPC UA group {self.name!r} needs nodes or a browse path")
        return self


class OpcUaServerSettings(BaseModel):
    """One OPC UA server (a PLC or a gateway) and what to subscribe to on it."""

    name: str = Field(description="names the source in /metrics, /healthz and dead letters")
    url: str = Field(description="opc.tcp://host:port[/path]")
    site: str = Field(description="site of every asset read from this server")
    security: Literal["none", "basic256sha256"] = "none"
    mode: Literal["sign", "sign_and_encrypt"] = "sign_and_encrypt"
    username: str = Field("", description="user name (empty: anonymous)")
    password: SecretStr | None = None
    certificate: Path | None = Field(
        None, description="client certificate (DER or PEM); made self-signed when absent"
    )
    private_key: Path | None = None
    server_certificate: Path | None = Field(
        None, description="pin the server's certificate (absent: the one the server offers)"
    )
    timestamps: Literal["source", "server", "receipt"] = Field(
        "source", description="which time a reading gets (falls back to the next one)"
    )
    request_timeout_s: float = Field(4.0, gt=0)
    reconnect_min_s: float = Field(1.0, gt=0, description="first wait after a lost connection")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the reconnect backoff")
    watchdog_s: float = Field(1.0, gt=0, description="how often the connection is checked")
    flush_interval_ms: float = Field(
        100.0, gt=0, description="how long notifications gather before one spool commit"
    )
    groups: list[OpcUaGroupSettings] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "opc.tcp" or not parts.hostname:
            raise ValueError(f"an OPC UA url looks like opc.tcp://host:4840/path, got {value!r}")
        return value
