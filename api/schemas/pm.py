"""Schemas of preventive maintenance: meters and their readings, PM plans, the forecast."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from api.schemas.common import (
    Code,
    Id,
    Keep,
    OptText,
    PublicSchema,
    Schema,
    Text,
    UpdateSchema,
    UtcDatetime,
)
from api.schemas.work_orders import ChecklistItem

CalendarUnit = Literal["days", "weeks", "months"]
Anchor = Literal["completion", "fixed"]
MeterName: Any = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
MAX_METER = 1e12


class MeterReadingCreate(Schema):
    """A reading of one meter, by hand (an hour-meter read off its plate)."""

    value: float = Field(ge=0, le=MAX_METER)
    at: UtcDatetime | None = Field(None, description="When it was read (default: now).")
    reset: bool = Field(False, description="The meter was reset or replaced: it restarts.")
    unit: str = Text(32)


class CountedReading(Schema):
    """A meter value counted from telemetry (the analytics service), by site and asset code."""

    site: Code
    asset: Code
    name: str = MeterName
    value: float = Field(ge=0, le=MAX_METER)
    at: UtcDatetime
    unit: str = Text(32)
    reset: bool = False


class CountedReadings(Schema):
    """A batch of counted meter values (one per asset and meter, usually)."""

    readings: list[CountedReading] = Field(min_length=1, max_length=5000)


class MeterPublic(PublicSchema):
    """A meter: what it shows, and its lifetime total across resets (plans count that)."""

    id: int
    asset_id: int
    name: str
    unit: str
    value: float
    total: float
    read_at: datetime | None


class MeterReadingPublic(PublicSchema):
    """One reading of a meter."""

    id: int
    meter_id: int
    at: datetime
    value: float
    total: float
    reset: bool
    source: str


class CountedResult(PublicSchema):
    """What a batch of counted readings did."""

    accepted: int
    duplicates: int
    rejected: list[dict[str, str]]


class PmPlanCreate(Schema):
    """A PM plan on one asset or on every asset of a type in a site; calendar, meter or both
    (whichever falls due first)."""

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "site_id": 1,
                    "asset_type": "pump",
                    "title": "Grease the bearings",
                    "meter_name": "running_hours",
                    "meter_every": 500,
                    "meter_lead": 25,
                    "estimated_minutes": 30,
                    "checklist": [
                        {"item": "isolate and lock out", "required": True},
                        {
                            "item": "bearing temperature after greasing",
                            "kind": "measurement",
                            "unit": "°C",
                            "max": 70,
                        },
                    ],
                },
                {
                    "site_id": 1,
                    "asset_type": "ahu",
                    "title": "Change the filters",
                    "every": 3,
                    "unit": "months",
                    "lead_days": 7,
                },
            ]
        }
    }
    site_id: Id
    asset_id: Id | None = None
    asset_type: str | None = OptText(64, 1)
    title: str = Text(200, 1)
    description: str = Text(10_000)
    failure_mode: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00]*$",
        description="What the plan prevents: a corrective order of this mode completed on the "
        "asset just before the plan falls due counts as its work.",
    )
    priority: int = Field(3, ge=1, le=4)
    estimated_minutes: int = Field(0, ge=0, le=100_000)
    checklist: list[ChecklistItem] = Field(default_factory=list, max_length=100)
    every: int | None = Field(None, ge=1, le=1000)
    unit: CalendarUnit | None = None
    anchor: Anchor = "completion"
    starts_at: UtcDatetime | None = Field(
        None, description="First due date (default: one interval after creation)."
    )
    lead_days: float = Field(0, ge=0, le=365)
    meter_name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    meter_every: float | None = Field(None, gt=0, le=MAX_METER)
    meter_lead: float = Field(0, ge=0, le=MAX_METER)
    active: bool = True

    @model_validator(mode="after")
    def _shape(self) -> PmPlanCreate:
        if (self.asset_id is None) == (self.asset_type is None):
            raise ValueError("give exactly one of 'asset_id' and 'asset_type'")
        if (self.every is None) != (self.unit is None):
            raise ValueError("a calendar trigger needs both 'every' and 'unit'")
        if (self.meter_name is None) != (self.meter_every is None):
            raise ValueError("a meter trigger needs both 'meter_name' and 'meter_every'")
        if self.every is None and self.meter_name is None:
            raise ValueError(
                "a plan needs a calendar trigger ('every', 'unit'), a meter one, or both"
            )
        if self.anchor == "fixed" and self.every is None:
            raise ValueError("a fixed schedule needs a calendar trigger")
        if self.meter_every is not None and self.meter_lead >= self.meter_every:
            raise ValueError("'meter_lead' must be less than 'meter_every'")
        return self


class PmPlanUpdate(UpdateSchema):
    """Changes to a plan's description, checklist, lead times or whether it is active (its
    triggers and targets are fixed: make a new plan to change them)."""

    title: str = OptText(200, 1)
    description: str = OptText(10_000)
    priority: int = Keep(ge=1, le=4)
    estimated_minutes: int = Keep(ge=0, le=100_000)
    checklist: list[ChecklistItem] = Keep(max_length=100)
    lead_days: float = Keep(ge=0, le=365)
    meter_lead: float = Keep(ge=0, le=MAX_METER)
    active: bool = Keep()


class PmPlanPublic(PublicSchema):
    """A PM plan."""

    id: int
    site_id: int
    asset_id: int | None
    asset_type: str | None
    title: str
    description: str
    failure_mode: str | None
    priority: int
    estimated_minutes: int
    checklist: list[ChecklistItem]
    every: int | None
    unit: str | None
    anchor: str
    starts_at: datetime
    lead_days: float
    meter_name: str | None
    meter_every: float | None
    meter_lead: float
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class ForecastItem(PublicSchema):
    """One plan on one asset falling due within the forecast window."""

    plan_id: int
    asset_id: int
    site_id: int
    title: str
    due_at: datetime | None = Field(description="Calendar due date, or projected from the meter.")
    due_by: Literal["calendar", "meter"]
    meter_name: str | None
    meter_due: float | None
    meter_now: float | None
    estimated_minutes: int
    open_work_order_id: int | None
    assignee_id: int | None = Field(None, description="Who holds the generated order, if any.")


class Forecast(PublicSchema):
    """What falls due in the window, and the labour it needs per site."""

    until: datetime
    items: list[ForecastItem]
    minutes_by_site: dict[int, int]
    # By the technician holding the generated order; work without one yet is "unassigned" (the
    # assignment policy picks when the order is made).
    minutes_by_technician: dict[int, int]
    unassigned_minutes: int
