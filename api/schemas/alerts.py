"""Schemas of alerts (the analytics contract), their lifecycle actions, outcomes and KPIs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from api.schemas.common import Code, PublicSchema, Schema, Severity, Text, UtcDatetime

AlertKind = Literal[
    "equipment_anomaly",
    "instrument_stale",
    "instrument_stuck",
    "instrument_out_of_range",
    "instrument_spikes",
    "threshold",
]
AlertState = Literal[
    "active_unacknowledged",
    "active_acknowledged",
    "rtn_unacknowledged",
    "normal",
    "shelved",
    "suppressed",
    "out_of_service",
]


class Contributor(Schema):
    """A sensor's share of an anomaly score (shares of one alert sum to about 1)."""

    model_config = ConfigDict(extra="ignore")
    sensor: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
    share: float = Field(ge=-1e6, le=1e6)


class AlertPost(Schema):
    """What the analytics service posts: the condition of one (asset, kind, failure mode).

    `state` is the condition (`active` or `normal`), not the alert's lifecycle state.
    """

    # Newer analytics versions may add keys; ignoring them keeps the contract forward-compatible.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "site": "plant-a",
                    "asset": "pump-01",
                    "kind": "equipment_anomaly",
                    "failure_mode": "bearing_wear",
                    "state": "active",
                    "severity": "high",
                    "health": 42,
                    "score": 7.3,
                    "threshold": 5.0,
                    "detected_at": "2026-11-27T07:00:00Z",
                    "contributors": [{"sensor": "vibration_rms", "share": 0.7}],
                    "message": "vibration and bearing temperature rising together",
                }
            ]
        },
    )
    site: Code
    asset: Code
    kind: AlertKind
    failure_mode: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
    state: Literal["active", "normal"]
    severity: Severity = "medium"
    health: float | None = Field(None, ge=0, le=100)
    score: float | None = Field(None, ge=-1e300, le=1e300)
    threshold: float | None = Field(None, ge=-1e300, le=1e300)
    detected_at: UtcDatetime
    contributors: list[Contributor] = Field(default_factory=list, max_length=256)
    message: str = Text(4000)


class AlertPublic(PublicSchema):
    """An alert with its lifecycle state and current work order."""

    id: int
    site_id: int
    asset_id: int
    kind: str
    failure_mode: str
    state: str
    condition_active: bool
    severity: str
    health: float | None
    score: float | None
    threshold: float | None
    message: str
    contributors: list[Contributor]
    occurrences: int
    opened_at: datetime
    cleared_at: datetime | None
    last_detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    shelved_until: datetime | None
    work_order_id: int | None
    updated_at: datetime


AlertActionName = Literal[
    "shelve",
    "unshelve",
    "suppress",
    "unsuppress",
    "remove_from_service",
    "return_to_service",
]


class AlertAction(Schema):
    """An operator action; shelving needs `until`, every action but acknowledge a `reason`."""

    action: AlertActionName
    reason: str = Text(2000)
    until: UtcDatetime | None = None

    @model_validator(mode="after")
    def _needs(self) -> AlertAction:
        if self.action == "shelve" and self.until is None:
            raise ValueError("shelving needs 'until' (when the alert re-alarms)")
        if self.action in ("shelve", "suppress", "remove_from_service") and not self.reason:
            raise ValueError(f"{self.action} needs a 'reason' for the audit trail")
        return self


class AlertEventPublic(PublicSchema):
    """One entry of an alert's history."""

    id: int
    at: datetime
    event: str
    actor: str
    reason: str
    state_from: str | None
    state_to: str


class OutcomePublic(PublicSchema):
    """How an alert ended, for the analytics service's labels."""

    alert_id: int
    site: str
    asset: str
    kind: str
    failure_mode: str
    opened_at: datetime
    cleared_at: datetime | None
    outcome: Literal["confirmed_fault", "no_fault_found"] | None
    work_order_id: int | None
    # When the work order was completed (null while it is not): the analytics service fits a
    # repaired asset's new baseline on the data after it.
    completed_at: datetime | None = None


class FloodPeriod(PublicSchema):
    """A 10-minute window with more than 10 alert activations."""

    start: datetime
    activations: int


class AlarmKpis(PublicSchema):
    """ISA-18.2 alarm-system performance figures for one site over a window."""

    site_id: int
    start: datetime
    end: datetime
    activations: int
    per_day: float = Field(description="Average activations per day (target ≤ 150 per operator).")
    per_10_minutes_avg: float
    per_10_minutes_max: int
    flood_periods: list[FloodPeriod]
    flood_time_percent: float
    chattering_alerts: list[int] = Field(description="Alerts activated ≥ 3 times within 60 s.")
    standing_alerts: list[int] = Field(description="Alerts active for more than 24 hours.")
