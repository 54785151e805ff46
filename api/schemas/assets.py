"""Schemas of the asset hierarchy: sites, areas, assets and their sensors."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator

from api.schemas.common import (
    Code,
    Criticality,
    Id,
    Keep,
    OptText,
    PublicSchema,
    Schema,
    Text,
    UpdateSchema,
)


class SiteCreate(Schema):
    """A new site; `code` is the `site` tag its readings carry."""

    code: Code = Field(examples=["plant-a"])
    name: str = Text(200, 1)
    timezone: str = Field("UTC", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")


class SiteUpdate(UpdateSchema):
    """Changes to a site (the code is permanent: readings refer to it); `null` is refused."""

    name: str = OptText(200, 1)
    timezone: str = Keep(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")


class SitePublic(PublicSchema):
    """A site."""

    id: int
    code: str
    name: str
    timezone: str
    created_at: datetime


class AreaCreate(Schema):
    """A new area of a site."""

    site_id: Id
    name: str = Text(200, 1)
    description: str = Text(2000)


class AreaPublic(PublicSchema):
    """An area."""

    id: int
    site_id: int
    name: str
    description: str


class AssetCreate(Schema):
    """A new asset; `code` is the `asset` tag its readings carry."""

    site_id: Id
    area_id: Id | None = None
    code: Code = Field(examples=["pump-01"])
    name: str = Text(200, 1)
    asset_type: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$", examples=["pump"])
    criticality: Criticality = "medium"
    location: str = Text(200)
    make: str = Text(100)
    model: str = Text(100)
    serial: str = Text(100)
    installed_on: date | None = None


class AssetUpdate(UpdateSchema):
    """Changes to an asset; absent fields stay as they are, `null` clears `area_id` and
    `installed_on` and is refused elsewhere."""

    area_id: Id | None = Field(None, description="`null` takes the asset out of its area.")
    name: str = OptText(200, 1)
    asset_type: str = OptText(64, 1)
    criticality: Criticality = Keep()
    location: str = OptText(200)
    make: str = OptText(100)
    model: str = OptText(100)
    serial: str = OptText(100)
    installed_on: date | None = Field(None, description="`null` clears the date.")


class AssetPublic(PublicSchema):
    """An asset."""

    id: int
    site_id: int
    area_id: int | None
    code: str
    name: str
    asset_type: str
    criticality: str
    location: str
    make: str
    model: str
    serial: str
    installed_on: date | None
    created_at: datetime


class SensorCreate(Schema):
    """A sensor of an asset: the field name in InfluxDB, its unit and physical limits."""

    name: Code = Field(examples=["bearing_temp"])
    unit: str = Field("", max_length=32, pattern=r"^[^\x00]*$", examples=["°C"])
    min_value: float | None = Field(None, ge=-1e300, le=1e300)
    max_value: float | None = Field(None, ge=-1e300, le=1e300)
    description: str = Text(2000)

    @model_validator(mode="after")
    def _limits(self) -> SensorCreate:
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError("min_value must not exceed max_value")
        return self


class SensorPublic(PublicSchema):
    """A sensor."""

    id: int
    asset_id: int
    name: str
    unit: str
    min_value: float | None
    max_value: float | None
    description: str
