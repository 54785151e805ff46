"""Schemas of work orders: creation, updates, state transitions, evidence and reliability."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from api.schemas.common import (
    Id,
    Keep,
    OptText,
    PublicSchema,
    Schema,
    Text,
    UpdateSchema,
    UtcDatetime,
)

# `requested` is retired (migration 0008): asking for work is a work request now.
WorkOrderState = Literal[
    "open",
    "assigned",
    "in_progress",
    "on_hold",
    "completed",
    "verified",
    "reopened",
    "cancelled",
]
WorkType = Literal["corrective", "instrument", "preventive", "inspection"]
Resolution = Literal["fixed", "no_fault_found"]


StepKind = Literal["check", "measurement", "pass_fail", "photo"]


class ChecklistItem(Schema):
    """One step to do; `done` is ticked by the technician.

    A `measurement` step records `value` (in `unit`) and is `flagged` when it falls outside
    [`min`, `max`]; a `pass_fail` step records `result`. A `required` step must be done before
    the order can be completed. `photo` is a placeholder until attachments exist.
    """

    item: str = Text(500, 1)
    done: bool = False
    kind: StepKind = "check"
    required: bool = False
    unit: str = Text(32)
    min: float | None = None
    max: float | None = None
    value: float | None = None
    result: Literal["pass", "fail"] | None = None
    # Set by the server: a measurement outside its limits, or a failed pass/fail step.
    flagged: bool = False

    @model_validator(mode="after")
    def _flag(self) -> ChecklistItem:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        low = self.value is not None and self.min is not None and self.value < self.min
        high = self.value is not None and self.max is not None and self.value > self.max
        flagged = low or high or self.result == "fail"
        if flagged != self.flagged:  # assignment runs pydantic's __setattr__: only if it moves
            self.flagged = flagged
        return self


class PartUsed(Schema):
    """A spare part consumed by the job."""

    part: str = Text(200, 1)
    quantity: float = Field(1, gt=0, le=1e6)


class Note(Schema):
    """A free-text note with its author and time."""

    at: datetime
    author: str
    text: str


class WorkOrderCreate(Schema):
    """A work order raised by hand (alerts raise theirs through the policy)."""

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "asset_id": 1,
                    "title": "Replace drive belt",
                    "work_type": "preventive",
                    "priority": 3,
                    "checklist": [{"item": "isolate power"}, {"item": "fit new belt"}],
                }
            ]
        }
    }
    asset_id: Id
    title: str = Text(200, 1)
    description: str = Text(10_000)
    work_type: WorkType = "corrective"
    failure_mode: str | None = OptText(128, 1)
    priority: int = Field(3, ge=1, le=4, description="1 = most urgent.")
    due_at: UtcDatetime | None = None
    assignee_id: Id | None = None
    checklist: list[ChecklistItem] = Field(default_factory=list, max_length=100)


class WorkOrderUpdate(UpdateSchema):
    """Changes to a work order's fields (its state changes through transitions).

    Only `due_at` may be `null` (no due date); every other field refuses it with 422.
    """

    title: str = OptText(200, 1)
    description: str = OptText(10_000)
    priority: int = Keep(ge=1, le=4)
    due_at: UtcDatetime | None = Field(None, description="`null` removes the due date.")
    checklist: list[ChecklistItem] = Keep(max_length=100)
    parts_used: list[PartUsed] = Keep(max_length=100)
    labour_minutes: int = Keep(ge=0, le=1_000_000)
    downtime_minutes: int = Keep(ge=0, le=1_000_000)
    note: str = Keep(min_length=1, max_length=10_000, pattern=r"^[^\x00]*$")


class WorkOrderTransition(Schema):
    """Move a work order to another state; completing needs a resolution."""

    to: WorkOrderState
    assignee_id: Id | None = Field(None, description="With 'assigned': who (default: caller).")
    reason: str = Text(2000)
    resolution: Resolution | None = None
    failure_code: str | None = OptText(64, 1)
    cause: str | None = OptText(2000)
    remedy: str | None = OptText(2000)

    @model_validator(mode="after")
    def _completion(self) -> WorkOrderTransition:
        if self.to == "completed" and self.resolution is None:
            raise ValueError("completing needs 'resolution': 'fixed' or 'no_fault_found'")
        return self


class EvidencePublic(PublicSchema):
    """An alert occurrence behind a work order."""

    alert_id: int
    at: datetime
    severity: str
    score: float | None
    contributors: list[dict[str, object]]
    chart_url: str


class WorkOrderPublic(PublicSchema):
    """A work order."""

    @field_validator("checklist", "notes", "parts_used", mode="before")
    @classmethod
    def _no_null_lists(cls, value: object) -> object:
        # Rows written before PATCH refused `null` hold JSON null here; reading one must not
        # fail (it once made every list page holding that order answer 500).
        return [] if value is None else value

    id: int
    site_id: int
    asset_id: int
    title: str
    description: str
    work_type: str
    failure_mode: str | None
    state: WorkOrderState
    priority: int
    due_at: datetime | None
    assignee_id: int | None
    alert_id: int | None
    pm_plan_id: int | None = None
    checklist: list[ChecklistItem]
    notes: list[Note]
    parts_used: list[PartUsed]
    labour_minutes: int
    downtime_minutes: int
    resolution: str | None
    failure_code: str | None
    cause: str | None
    remedy: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    verify_due_at: datetime | None
    verified_at: datetime | None
    updated_at: datetime
    version: int
    evidence: list[EvidencePublic] = Field(default_factory=list)


class Reliability(PublicSchema):
    """Reliability figures of one asset over a window (hours; null without enough events)."""

    asset_id: int
    start: datetime
    end: datetime
    failures: int
    mtbf_hours: float | None
    mttr_hours: float | None
