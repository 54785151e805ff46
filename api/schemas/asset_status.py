"""Schemas of asset status: the analytics service's per-asset condition, and its listing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from api.schemas.alerts import Contributor
from api.schemas.common import Code, PublicSchema, Schema, Text, UtcDatetime

AssetState = Literal["learning", "normal", "alarm", "instrument", "stale"]
# One post per scoring cycle covers a fleet; 5000 keeps a body near 2 MB at most.
MAX_ITEMS = 5000


class AssetStatusItem(Schema):
    """The condition of one asset at `observed_at`."""

    # Newer analytics versions may add keys; ignoring them keeps the contract forward-compatible.
    model_config = ConfigDict(extra="ignore")
    site: Code
    asset: Code
    state: AssetState
    health: float | None = Field(None, ge=0, le=100)
    score: float | None = Field(None, ge=-1e300, le=1e300)
    threshold: float | None = Field(None, ge=-1e300, le=1e300)
    contributors: list[Contributor] = Field(default_factory=list, max_length=256)
    observed_at: UtcDatetime
    message: str = Text(4000)
    learning_until: UtcDatetime | None = Field(
        None, description="When a learning asset starts being scored."
    )


class AssetStatusPost(Schema):
    """A batch of asset conditions (the latest per asset is kept)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "site": "plant-a",
                            "asset": "pump-01",
                            "state": "alarm",
                            "health": 42,
                            "score": 7.3,
                            "threshold": 5.0,
                            "contributors": [{"sensor": "vibration_rms", "share": 0.7}],
                            "observed_at": "2026-11-27T07:00:00Z",
                        }
                    ]
                }
            ]
        },
    )
    items: list[AssetStatusItem] = Field(min_length=1, max_length=MAX_ITEMS)


class AssetStatusResult(PublicSchema):
    """How many items were stored, and how many were older than what is stored."""

    accepted: int
    ignored_stale: int


class AssetStatusPublic(PublicSchema):
    """An asset's latest condition, with its site and asset codes and how old it is."""

    site_id: int
    site: str
    asset_id: int
    asset: str
    asset_name: str
    asset_type: str
    criticality: str
    state: AssetState
    health: float | None
    score: float | None
    threshold: float | None
    contributors: list[Contributor]
    message: str
    observed_at: datetime
    learning_until: datetime | None
    updated_at: datetime
    age_s: float = Field(description="Seconds since observed_at.")
