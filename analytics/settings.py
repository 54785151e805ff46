"""Settings of the live detector service (``python -m analytics run``), read from the environment.

Environment variables use the ``EQUIPMON_ANALYTICS__`` prefix and ``__`` for nesting, e.g.
``EQUIPMON_ANALYTICS__API__URL``, ``EQUIPMON_ANALYTICS__INFLUX__URL``,
``EQUIPMON_ANALYTICS__SERVICE_TOKEN``, ``EQUIPMON_ANALYTICS__TICK_S`` (telemetry.settings).
Tests build ``ServiceSettings(...)`` directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from telemetry.influx.settings import InfluxSettings
from telemetry.settings import EquipmonSettings


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


class RuleSettings(BaseModel):
    """Instrument rules beside the model (stale, stuck, out of range); times in seconds."""

    stale_asset_s: float = Field(
        600.0, gt=0, description="An asset with no point for this long (wall clock) is stale."
    )
    stale_sensor_s: float = Field(
        600.0, gt=0, description="A sensor missing from an asset's points for this long is stale."
    )
    stuck_min_s: float = Field(
        600.0, gt=0, description="Shortest flat run (identical values) called stuck."
    )
    stuck_factor: float = Field(
        3.0,
        ge=1,
        description="A flat run must also exceed this many times the longest flat run of the "
        "sensor in its baseline (quantised sensors repeat values now and then).",
    )
    stuck_tolerance: float = Field(
        1e-3, ge=0, description="'Same value' = within this fraction of the baseline spread."
    )
    neighbour_corr: float = Field(
        0.5, gt=0, le=1, description="|correlation| on the baseline that makes a neighbour."
    )
    on_delay_s: float = Field(10.0, ge=0, description="A condition must hold this long.")
    off_delay_s: float = Field(60.0, ge=0, description="Cleared after this long without it.")
    limits_refresh_s: float = Field(
        600.0, gt=0, description="How often sensor min/max limits are read from the API."
    )


class MeterRule(BaseModel):
    """A meter counted from one sensor of every asset that has it.

    ``integral``: the sensor's value integrated over running time, times ``scale`` (a flow in
    m³/h with scale 1/3600 gives m³); ``rising``: how many times the value rises through
    ``threshold`` (cycles of a loaded compressor, door openings).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    sensor: str = Field(min_length=1, max_length=128)
    kind: Literal["integral", "rising"]
    scale: float = 1.0
    threshold: float = 0.0
    unit: str = ""


DEFAULT_METER_RULES = [
    MeterRule(name="pumped_volume", sensor="flow", kind="integral", scale=1 / 3600, unit="m3")
]


class LifecycleSettings(BaseModel):
    """Model persistence, retraining and feedback from work-order outcomes."""

    retrain_every_s: float = Field(
        7 * 86400.0, gt=0, description="Refit an asset whose model is older than this."
    )
    retrain_window_s: float = Field(
        86400.0, gt=0, description="Span of recent data a scheduled retrain fits on."
    )
    grow_short_baselines: bool = Field(
        True,
        description="Refit a model fitted on less than retrain_window_s (a new asset's first "
        "fit) as soon as that much data exists: slow faults are only seen against a baseline "
        "of a day or more.",
    )
    fit_from_history: bool = Field(
        True,
        description="A new asset with no stored model whose data reaches back past the first "
        "read is fitted on its stored history (up to retrain_window_s back, at least "
        "train_after_s of it), so a service starting on existing data scores at once; "
        "otherwise it learns from its first train_after_s of live data.",
    )
    max_train_rows: int = Field(
        20_000, ge=100, description="Most rows one fit uses (the most recent ones)."
    )
    warm_s: float = Field(
        1800.0,
        ge=0,
        description="A refitted model is fed this much recent data before it is swapped in, "
        "so its adaptive baselines are current (3 × the level baseline's 600 s).",
    )
    feedback_poll_s: float = Field(
        60.0, gt=0, description="How often work-order outcomes are read from the API."
    )
    nff_factor: float = Field(
        1.25, gt=1, description="Threshold multiplier per 'no fault found' outcome."
    )
    nff_cap: float = Field(2.0, gt=1, description="Largest threshold multiplier from feedback.")
    meter_rules: list[MeterRule] = Field(
        default_factory=lambda: list(DEFAULT_METER_RULES),
        description="Meters counted from one sensor besides running hours and starts (JSON "
        "list of {name, sensor, kind: integral|rising, scale, threshold, unit}); default: "
        "pumped_volume, the flow sensor (m3/h) integrated to m3.",
    )
    meters_post_s: float = Field(
        60.0, gt=0, description="How often counted meters (running hours, starts) go to the API."
    )
    meter_max_gap_s: float = Field(
        300.0,
        gt=0,
        description="A gap between two readings longer than this counts no running time (the "
        "asset was silent).",
    )
    meter_min_baseline_s: float = Field(
        86400.0,
        gt=0,
        description="An asset's meters start counting once its model is fitted on this much "
        "data (its running level must show), backfilled from that baseline.",
    )
    meter_catch_up_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="After a restart, how far back the meters are caught up (from the last "
        "reading counted) when the service was down longer than its look-back.",
    )
    post_repair_s: float = Field(
        3600.0,
        gt=0,
        description="After a work order is completed as fixed, the asset's model is refitted on "
        "this much post-repair data alone (the repaired machine is its own new normal); "
        "scheduled retrains then grow that baseline.",
    )
    nff_decay_s: float = Field(
        14 * 86400.0, gt=0, description="Time constant over which an NFF's effect fades."
    )


class ShardSettings(BaseModel):
    """Which part of the fleet this process scores, so several processes share the fleet.

    An asset belongs to the shard when its site is listed (or no site is) and, with
    ``count`` > 1, when the stable hash of ``site/asset`` (analytics.shard) modulo ``count``
    is ``index``. Processes with the same sites and count and indexes 0 .. count-1, or with
    disjoint site lists that name every site, score every asset exactly once. Each process
    keeps its own ``data_dir`` (models and labels of the assets it owns).
    """

    # NoDecode: the environment gives a comma-separated list ("plant-a,plant-b"); a JSON list
    # is accepted too (the validator below reads both).
    sites: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Score only these sites, comma-separated (e.g. 'plant-a,plant-b'); empty "
        "= every site. The InfluxDB read asks for these sites only.",
    )
    count: int = Field(
        1,
        ge=1,
        description="Split the assets (of the listed sites) into this many shards by a stable "
        "hash of site/asset; 1 = no hash split. The read still returns every asset of the "
        "sites, and the others' series are skipped unparsed.",
    )
    index: int = Field(
        0,
        ge=0,
        description="Which hash shard this process scores: 0 .. count-1 (0-based, like a "
        "StatefulSet ordinal). Every shard process needs its own data_dir.",
    )

    @field_validator("sites", mode="before")
    @classmethod
    def _split_sites(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("sites")
    @classmethod
    def _check_sites(cls, value: list[str]) -> list[str]:
        if any(not site for site in value):
            raise ValueError("shard.sites must not contain an empty site")
        return list(dict.fromkeys(value))  # duplicates mean nothing; keep the given order

    @model_validator(mode="after")
    def _check_index(self) -> ShardSettings:
        if self.index >= self.count:
            raise ValueError(
                f"shard.index must be below shard.count ({self.count}), got {self.index}"
            )
        return self


class ServiceSettings(EquipmonSettings):
    """Everything the detector service needs; components take their own section."""

    env_service = "analytics"
    model_config = SettingsConfigDict(extra="ignore")

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
        description="Persisted state: fitted baselines (models/) and feedback labels.",
    )
    rules: RuleSettings = Field(default_factory=RuleSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    shard: ShardSettings = Field(default_factory=ShardSettings)
    status_posts: bool = Field(True, description="Post every asset's status each tick.")
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
