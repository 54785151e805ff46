"""Assets (with filters), their sensors, and their reliability figures."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from api.crud import apply, conflicts_as_409, get_or_404
from api.deps import Admin, Reader, SessionDep, Staff
from api.errors import InvalidError, NotFoundError
from api.models import Area, Asset, Sensor, Site
from api.pagination import Limit, Offset, PathId, QueryId, QueryText, paginate
from api.schemas.assets import AssetCreate, AssetPublic, AssetUpdate, SensorCreate, SensorPublic
from api.schemas.common import Criticality, Page, UtcDatetime
from api.schemas.work_orders import Reliability
from api.services import audit
from api.services.reliability import reliability, reliability_window

router = APIRouter(tags=["assets"])


def _check_area(session: SessionDep, site_id: int, area_id: int | None) -> None:
    if area_id is None:
        return
    area = session.get(Area, area_id)
    if area is None or area.site_id != site_id:
        raise InvalidError(f"area {area_id} is not an area of site {site_id}", where="area_id")


@router.get("/assets", summary="List assets")
def list_assets(
    session: SessionDep,
    _: Reader,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    site_id: QueryId = None,
    area_id: QueryId = None,
    asset_type: QueryText = None,
    criticality: Annotated[Criticality | None, Query()] = None,
    code: QueryText = None,
) -> Page[AssetPublic]:
    """Assets filtered by site, area, type, criticality or code."""
    stmt = sa.select(Asset).order_by(Asset.site_id, Asset.code)
    for column, value in (
        (Asset.site_id, site_id),
        (Asset.area_id, area_id),
        (Asset.asset_type, asset_type),
        (Asset.criticality, criticality),
        (Asset.code, code),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, AssetPublic, limit, offset)


@router.post("/assets", status_code=201, summary="Register an asset")
def create_asset(body: AssetCreate, session: SessionDep, principal: Staff) -> AssetPublic:
    """A new asset in a site (codes are unique per site)."""
    get_or_404(session, Site, body.site_id)
    _check_area(session, body.site_id, body.area_id)
    asset = Asset(**body.model_dump())
    with conflicts_as_409(f"asset {body.code!r}"):
        session.add(asset)
        session.flush()
        audit.record(session, principal.actor, "create", "asset", asset.id, body.model_dump())
        session.commit()
    return AssetPublic.model_validate(asset)


@router.get("/assets/{asset_id}", summary="Get an asset")
def get_asset(asset_id: PathId, session: SessionDep, _: Reader) -> AssetPublic:
    """One asset."""
    return AssetPublic.model_validate(get_or_404(session, Asset, asset_id))


@router.patch("/assets/{asset_id}", summary="Change an asset")
def update_asset(
    asset_id: PathId, body: AssetUpdate, session: SessionDep, principal: Staff
) -> AssetPublic:
    """Change an asset's description, criticality or area (`null` clears area and date)."""
    asset = get_or_404(session, Asset, asset_id, lock=True)
    # Explicit nulls reach here only for the nullable fields (the schema refuses the others).
    changes = body.model_dump(exclude_unset=True)
    _check_area(session, asset.site_id, changes.get("area_id"))
    apply(asset, changes)
    audit.record(session, principal.actor, "update", "asset", asset.id, changes)
    session.commit()
    return AssetPublic.model_validate(asset)


@router.delete("/assets/{asset_id}", status_code=204, summary="Delete an asset")
def delete_asset(asset_id: PathId, session: SessionDep, principal: Admin) -> Response:
    """Delete an asset with its sensors, alerts and work orders (admin only)."""
    asset = get_or_404(session, Asset, asset_id)
    session.delete(asset)
    audit.record(session, principal.actor, "delete", "asset", asset_id, {"code": asset.code})
    session.commit()
    return Response(status_code=204)


@router.get("/assets/{asset_id}/sensors", summary="List an asset's sensors")
def list_sensors(
    asset_id: PathId, session: SessionDep, _: Reader, limit: Limit = 100, offset: Offset = 0
) -> Page[SensorPublic]:
    """The sensors of an asset, by name."""
    get_or_404(session, Asset, asset_id)
    stmt = sa.select(Sensor).where(Sensor.asset_id == asset_id).order_by(Sensor.name)
    return paginate(session, stmt, SensorPublic, limit, offset)


@router.post("/assets/{asset_id}/sensors", status_code=201, summary="Add a sensor")
def create_sensor(
    asset_id: PathId, body: SensorCreate, session: SessionDep, principal: Staff
) -> SensorPublic:
    """A new sensor of an asset, with unit and physical limits."""
    get_or_404(session, Asset, asset_id)
    sensor = Sensor(asset_id=asset_id, **body.model_dump())
    with conflicts_as_409(f"sensor {body.name!r}"):
        session.add(sensor)
        session.flush()
        audit.record(session, principal.actor, "create", "sensor", sensor.id, body.model_dump())
        session.commit()
    return SensorPublic.model_validate(sensor)


@router.delete("/assets/{asset_id}/sensors/{sensor_id}", status_code=204, summary="Remove a sensor")
def delete_sensor(
    asset_id: PathId, sensor_id: PathId, session: SessionDep, principal: Staff
) -> Response:
    """Remove a sensor from an asset."""
    sensor = get_or_404(session, Sensor, sensor_id)
    if sensor.asset_id != asset_id:
        raise NotFoundError(f"sensor {sensor_id} is not a sensor of asset {asset_id}")
    session.delete(sensor)
    audit.record(session, principal.actor, "delete", "sensor", sensor_id, {"name": sensor.name})
    session.commit()
    return Response(status_code=204)


@router.get("/assets/{asset_id}/reliability", summary="MTBF and MTTR of an asset")
def get_reliability(
    asset_id: PathId,
    session: SessionDep,
    _: Reader,
    start: Annotated[UtcDatetime | None, Query(description="Default: a year ago.")] = None,
    end: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> Reliability:
    """Mean time between failures and to repair, from confirmed faults in the window."""
    asset = get_or_404(session, Asset, asset_id)
    return reliability(session, asset, *reliability_window(start, end))
