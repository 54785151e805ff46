"""Schemas of work requests: filing one (by API), triage, and what staff and requesters see."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import model_validator

from api.schemas.common import Id, OptText, PublicSchema, Schema, Text

Category = Literal[
    "not_working", "too_hot_or_cold", "leak", "noise_or_smell", "electrical", "safety", "other"
]
Urgency = Literal["low", "normal", "urgent"]
RequestStatus = Literal["new", "accepted", "merged", "declined"]
Language = Literal["en", "vi"]
# What a requester sees: the request's own status, then its work order's progress.
Progress = Literal["received", "accepted", "in_progress", "done", "declined", "cancelled"]


class WorkRequestCreate(Schema):
    """A problem reported by a helpdesk or front-office system (people use the web form)."""

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "asset_id": 12,
                    "category": "too_hot_or_cold",
                    "description": "Lobby air-conditioning blows warm air since 9:00",
                    "location": "Lobby, near reception",
                    "urgency": "urgent",
                    "requester_name": "Front desk",
                    "language": "vi",
                }
            ]
        }
    }

    site_id: Id | None = None
    asset_id: Id | None = None
    category: Category = "other"
    description: str = Text(2000, 3)
    location: str = Text(200)
    urgency: Urgency = "normal"
    requester_name: str = Text(200)
    requester_phone: str = Text(40)
    language: Language = "en"

    @model_validator(mode="after")
    def _where(self) -> WorkRequestCreate:
        if self.site_id is None and self.asset_id is None:
            raise ValueError("name the asset ('asset_id') or at least the site ('site_id')")
        return self


class WorkRequestPublic(PublicSchema):
    """A request as staff see it (the photo is served apart)."""

    id: int
    site_id: int
    asset_id: int | None
    category: str
    description: str
    location: str
    urgency: str
    requester_name: str
    requester_phone: str
    has_photo: bool = False
    status: RequestStatus
    work_order_id: int | None
    decline_reason: str | None
    source: str
    language: str
    created_at: datetime
    triaged_at: datetime | None
    triaged_by: str | None
    updated_at: datetime


class WorkRequestCreated(WorkRequestPublic):
    """The new request with the requester's own status link (shown this once only)."""

    status_token: str
    status_url: str


class Triage(Schema):
    """Accept into a new corrective work order, merge into an open one, or decline."""

    action: Literal["accept", "merge", "decline"]
    # accept: the new order's title and priority (default: from the request), its assignee.
    title: str | None = OptText(200, 1)
    priority: int | None = None
    assignee_id: Id | None = None
    # accept a site-wide request: the asset it turned out to be (of the request's site).
    asset_id: Id | None = None
    # merge: the open work order of the same asset that already covers the problem.
    work_order_id: Id | None = None
    # decline: why, in words the requester will read.
    reason: str | None = OptText(1000, 1)

    @model_validator(mode="after")
    def _needs(self) -> Triage:
        if self.action == "merge" and self.work_order_id is None:
            raise ValueError("merging needs 'work_order_id'")
        if self.action == "decline" and not self.reason:
            raise ValueError("declining needs a 'reason' the requester will read")
        if self.priority is not None and not 1 <= self.priority <= 4:
            raise ValueError("'priority' is 1 (most urgent) to 4")
        return self


class RequestLinkPublic(PublicSchema):
    """An asset's (or site's) request link: the URL its QR label opens."""

    site_id: int
    asset_id: int | None
    url: str
    rotated_at: datetime | None
