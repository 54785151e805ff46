"""Webhook subscriptions (the secret is write-only) and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, HttpUrl

from api.schemas.common import PublicSchema, Schema

WebhookEvent = Literal[
    "alert.opened",
    "alert.updated",
    "alert.cleared",
    "work_order.created",
    "work_order.updated",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
MAX_URL = 2000  # the column's length


def _fits(url: HttpUrl) -> HttpUrl:
    # Normalisation (percent-encoding) can lengthen a URL: check what will be stored.
    if len(str(url)) > MAX_URL:
        raise ValueError(f"the URL is longer than {MAX_URL} characters")
    return url


class WebhookCreate(Schema):
    """A subscription: where to POST which events, and the secret that signs them."""

    url: Annotated[
        HttpUrl,
        AfterValidator(_fits),
        Field(description="http(s) URL the events are POSTed to."),
    ]
    events: list[WebhookEvent] = Field(min_length=1, max_length=5)
    secret: str = Field(
        min_length=16,
        max_length=256,
        pattern=r"^[^\x00]*$",
        description="HMAC-SHA256 key of X-Equipmon-Signature; write-only (never returned).",
    )
    active: bool = True


class WebhookPublic(PublicSchema):
    """A subscription as returned: everything but its secret."""

    id: int
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime


class DeliveryPublic(PublicSchema):
    """One event for one webhook: its status, attempts so far and the last outcome."""

    id: int
    webhook_id: int
    event: str
    event_id: str
    occurred_at: datetime
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next try.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
