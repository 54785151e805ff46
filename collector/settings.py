"""Collector settings: one pydantic-settings class with sections, read from a file and the env.

Precedence (highest first): keyword arguments, ``EQUIPMON_COLLECTOR__*`` environment variables
(nested with ``__``, e.g. ``EQUIPMON_COLLECTOR__MQTT__URL``; telemetry.settings), the config
file (YAML or TOML), the defaults below.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from collector.errors import ConfigError
from collector.identity import CLIENT_ID_PREFIX, REPLICA_PATTERN, host_replica_name, spool_file
from collector.opcua.settings import OpcUaServerSettings
from collector.serial.settings import SerialPortSettings
from collector.sparkplug.settings import SparkplugSettings
from telemetry.influx.settings import InfluxSettings
from telemetry.settings import EquipmonSettings, build
from telemetry.topics import DEFAULT_PREFIX


class MqttSettings(BaseModel):
    """The broker connection and the subscription."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port.")
    client_id: str = Field(
        "",
        description="Fixed client id: the broker keeps this id's session (and its queue); "
        "empty = equipmon-collector-<replica>, so replicas never share one. Set "
        "equipmon-collector to keep a session made before replicas had names.",
    )
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    session_expiry_s: int = Field(
        7 * 86400,
        ge=0,
        description="MQTT v5 session expiry: how long the broker queues for us while we are away.",
    )
    keepalive_s: int = Field(30, ge=5, le=65535, description="Keep-alive interval.")
    topic_prefix: str = Field(
        DEFAULT_PREFIX,
        description="First topic level(s) of telemetry. The collector subscribes to the whole "
        "prefix (<prefix>/#): a message on a topic under it that is not telemetry is kept as "
        "an unknown_topic dead letter.",
    )
    site: str = Field(
        "+",
        description="Subscribe to one site only (<prefix>/<site>/#; '+' = all): split by site.",
    )
    shared_group: str = Field(
        "", description="Join the shared subscription group $share/<group>/... (empty = none)."
    )
    presence_topic: str = Field(
        "equipmon-collectors",
        description="Each collector announces itself (retained) on <this>/<client id> when it "
        "starts; one that finds a later announcement after a reconnect has been taken over by "
        "a newer process with its client id, and exits instead of taking it back (Mosquitto "
        "2.0 closes the old connection without saying why). Empty = off; the broker user "
        "needs read and write access to it.",
    )
    username: str = Field("", description="Broker user name (empty = anonymous).")
    password: SecretStr | None = Field(None, description="Broker password.")
    ca_file: str = Field("", description="CA bundle for mqtts:// (empty = system CAs).")
    cert_file: str = Field("", description="Client certificate (mutual TLS).")
    key_file: str = Field("", description="Client private key (mutual TLS).")
    tls_insecure: bool = Field(False, description="Skip the broker host name check (tests only).")
    reconnect_min_s: float = Field(1.0, gt=0, description="First reconnect delay (whole s).")
    reconnect_max_s: float = Field(15.0, gt=0, description="Reconnect delay cap (doubling).")
    inflight_window: int = Field(
        1000,
        ge=1,
        le=65535,
        description="Receive Maximum announced to a v5 broker: unacknowledged messages in flight.",
    )
    max_payload_bytes: int = Field(
        1_048_576, ge=1, description="Larger payloads are dead-lettered before decoding."
    )
    fast_path: bool = Field(
        True,
        description="The lean paho receive path, the JSON fast codec and Sparkplug's run "
        "decoding; false forces stock paho, the general codec and message-by-message Sparkplug "
        "(same results, slower: to rule the fast paths out).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"mqtt.url must look like mqtt://host:port or mqtts://host:port: {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _check_presence_topic(self) -> MqttSettings:
        # The collector subscribes to the whole prefix: announcements under it would come back
        # as deliveries, and other replicas' would be dead-lettered as unknown topics.
        prefix = self.topic_prefix
        if self.presence_topic and (
            self.presence_topic == prefix or self.presence_topic.startswith(f"{prefix}/")
        ):
            raise ValueError(
                f"mqtt.presence_topic ({self.presence_topic!r}) must not be under "
                f"mqtt.topic_prefix ({prefix!r}): the collector subscribes to the whole prefix"
            )
        return self

    @property
    def host(self) -> str:
        """The broker's host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts, unless given)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return urlsplit(self.url).scheme == "mqtts"


class SpoolSettings(BaseModel):
    """The durable spool between the broker and InfluxDB."""

    path: str = Field(
        "",
        description="A folder (one that exists, or ending in /): the spool is <replica>.sqlite "
        "in it, so replicas can share a volume; anything else is the SQLite file itself; "
        "empty = <data_dir>/collector/spool.sqlite.",
    )
    max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="What the spool may take on disk (pages in use + WAL) before the collector "
        "holds back (stops acknowledging); lowered, with a warning, to what the spool's file "
        "system can hold less its headroom (checked at start and while running).",
    )
    resume_fraction: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="Low mark: holding back ends once the spool is below this fraction of its "
        "effective limit (hysteresis, so acknowledgements do not flap).",
    )
    reserve_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        description="Headroom on the spool's disk: a reserve file of this size the spool gives "
        "back when a delete meets a full disk, and as much free space the limit leaves; at most "
        "1/16 of the file system.",
    )
    synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite synchronous mode: full = fsync per group commit (survives power "
        "loss), normal = survives a killed process only.",
    )
    commit_interval_ms: float = Field(
        20.0, gt=0, description="Group commit: commit at least this often while messages wait."
    )
    commit_max_messages: int = Field(
        500, ge=1, description="Group commit: commit once this many messages wait."
    )
    dead_letter_max: int = Field(10_000, ge=1, description="Dead letters kept (oldest go first).")
    dead_letter_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="Dead-letter bytes kept (oldest go first), at most 1/8 of the spool's "
        "effective limit: bad input never takes the room of good readings.",
    )
    dead_letter_payload_bytes: int = Field(
        65_536, ge=0, description="Payload bytes kept per dead letter (the rest is cut)."
    )

    @model_validator(mode="after")
    def _check(self) -> SpoolSettings:
        if self.commit_max_messages < 1:
            raise ValueError("spool.commit_max_messages must be at least 1")
        return self


class WriterSettings(BaseModel):
    """How the spool drains into InfluxDB."""

    batch_max_readings: int = Field(5000, ge=1, description="Readings per write request at most.")
    batch_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Body bytes at most.")
    parallel_requests: int = Field(
        2,
        ge=1,
        le=8,
        description="Writer lanes: each sends its next batch (within the batch limits) as soon "
        "as InfluxDB confirmed its last, so this many requests are in flight at once and "
        "InfluxDB ingests them on several cores.",
    )
    idle_poll_ms: float = Field(20.0, gt=0, description="Wait when the spool is empty.")
    retry_min_s: float = Field(0.5, gt=0, description="First retry delay (doubling, jittered).")
    retry_max_s: float = Field(10.0, gt=0, description="Retry delay cap.")
    probe_interval_s: float = Field(
        1.0,
        gt=0,
        description="While a retry waits, probe /ping this often: once InfluxDB answers again "
        "after it did not, the write is retried at once (Retry-After still a floor).",
    )
    fatal_retry_s: float = Field(
        30.0, gt=0, description="Retry interval after a fatal error (bad credentials, no db)."
    )
    create_database: bool = Field(
        True,
        description="Create a missing 1.x database (CREATE DATABASE, needs admin rights); off, "
        "or when that fails, /healthz names the command to run.",
    )


class SuperviseSettings(BaseModel):
    """Supervision of the collector's own threads (writer lanes, committer)."""

    restart_min_s: float = Field(
        0.5, gt=0, description="First restart delay of a thread that died (doubling)."
    )
    restart_max_s: float = Field(
        10.0, gt=0, description="Restart delay cap: a fault that persists does not spin."
    )
    healthy_after_s: float = Field(
        5.0,
        ge=0,
        description="A restarted thread counts as up (and /healthz healthy) once it has run "
        "this long without dying again.",
    )


class HttpSettings(BaseModel):
    """The metrics and health endpoint."""

    host: str = Field("127.0.0.1", description="Listen address ('' = all interfaces).")
    port: int = Field(9101, ge=0, le=65535, description="Port (0 = pick a free one).")
    enabled: bool = Field(True, description="Serve /metrics and /healthz.")


class LogSettings(BaseModel):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    dead_letter_log_interval_s: float = Field(
        10.0, ge=0, description="At most one dead-letter log line per reason per interval."
    )


class CollectorSettings(EquipmonSettings):
    """Everything the collector needs: mqtt, influx, spool, writer, http, supervise, log."""

    env_service = "collector"
    model_config = SettingsConfigDict(extra="forbid")

    data_dir: str = Field("var", description="Folder for the spool (unless spool.path is set).")
    replica: str = Field(
        "",
        description="This replica's stable name, which picks its MQTT client id and its file "
        "in a spool folder; empty = the host name (compose sets one per service).",
    )
    shutdown_flush_s: float = Field(
        10.0, ge=0, description="On SIGTERM, time allowed to drain the spool into InfluxDB."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    writer: WriterSettings = Field(default_factory=WriterSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    supervise: SuperviseSettings = Field(default_factory=SuperviseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    serial: list[SerialPortSettings] = Field(
        default_factory=list,
        description="Serial ports (ASCII frames or Modbus RTU buses) read into the same spool.",
    )
    sparkplug: SparkplugSettings = Field(
        default_factory=SparkplugSettings,
        description="Sparkplug B edge nodes on the MQTT broker (docs/collector.md, Sparkplug B).",
    )
    opcua: list[OpcUaServerSettings] = Field(
        default_factory=list,
        description="OPC UA servers read through subscriptions (docs/collector.md, OPC UA).",
    )

    @field_validator("replica")
    @classmethod
    def _check_replica(cls, value: str) -> str:
        if value and not re.match(REPLICA_PATTERN, value):
            raise ValueError(
                "replica must be 1-64 letters, digits, '.', '_' or '-' (it names the MQTT "
                f"client id and the spool file): {value!r}"
            )
        return value

    @property
    def replica_name(self) -> str:
        """This replica's name: ``replica``, else the host name."""
        return self.replica or host_replica_name()

    @property
    def client_id(self) -> str:
        """The MQTT client id: ``mqtt.client_id``, else one derived from the replica name."""
        return self.mqtt.client_id or f"{CLIENT_ID_PREFIX}-{self.replica_name}"

    @property
    def spool_path(self) -> Path:
        """Where the spool lives (see ``spool.path``)."""
        return spool_file(self.spool.path, self.data_dir, self.replica_name)[0]

    @property
    def spool_setting(self) -> str:
        """The setting that chose the spool file, for messages that tell what to change."""
        return spool_file(self.spool.path, self.data_dir, self.replica_name)[1]


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or TOML (.toml) config file into a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> CollectorSettings:
    """Build the settings from an optional file, the environment and overrides."""
    values = read_config_file(config_file) if config_file else {}
    return build(CollectorSettings, values, str(config_file or ""), **overrides)
