"""QR labels: an asset's (PNG or SVG), a site's sheet (PDF), and rotating a label's token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from api.crud import get_or_404
from api.db import session_scope
from api.deps import SessionDep, SessionsDep, SettingsDep, Staff
from api.errors import InvalidError
from api.models import Area, Asset, Site, utcnow
from api.pagination import PathId, QueryId
from api.schemas.requests import RequestLinkPublic
from api.services import labels
from api.services import requests as svc
from api.settings import Settings

router = APIRouter(tags=["labels"])
_IMAGES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/svg+xml": {}}}
}


@router.get(
    "/assets/{asset_id}/qr",
    summary="An asset's QR label",
    response_class=Response,
    responses=_IMAGES,
)
def asset_qr(
    asset_id: PathId,
    sessions: SessionsDep,
    settings: SettingsDep,
    _: Staff,
    format: Annotated[Literal["png", "svg"], Query()] = "png",
) -> Response:
    """The code of the asset's public request page (its token, never its id)."""
    # A GET that may write: the link is made the first time a label is asked for.
    with session_scope(sessions) as session:
        asset = get_or_404(session, Asset, asset_id)
        link = svc.link_of(session, asset.site_id, asset.id, create=True)
        url = svc.link_url(settings, link)
    headers = {"Cache-Control": "no-store", "X-Request-Url": url}
    if format == "svg":
        body = labels.svg(url, f"{asset.code} {asset.name}")
        return Response(body, media_type="image/svg+xml", headers=headers)
    return Response(labels.png(url), media_type="image/png", headers=headers)


@router.post("/assets/{asset_id}/qr/rotate", summary="Give an asset's label a new token")
def rotate_asset_qr(
    asset_id: PathId, session: SessionDep, settings: SettingsDep, principal: Staff
) -> RequestLinkPublic:
    """Labels printed before stop working (their page answers 404); print the new one."""
    asset = get_or_404(session, Asset, asset_id)
    link = svc.link_of(session, asset.site_id, asset.id, create=True)
    svc.rotate(session, link, principal.actor, utcnow())
    session.commit()
    return RequestLinkPublic(
        site_id=link.site_id, asset_id=link.asset_id, url=svc.link_url(settings, link),
        rotated_at=link.rotated_at,
    )  # fmt: skip


@router.get(
    "/sites/{site_id}/qr-labels",
    summary="A sheet of QR labels (PDF)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def site_labels(
    site_id: PathId,
    sessions: SessionsDep,
    settings: SettingsDep,
    _: Staff,
    area_id: QueryId = None,
) -> Response:
    """Every asset's label of the site (or of one area), the site-wide request page first."""
    with session_scope(sessions) as session:
        site, items = _sheet_labels(session, settings, site_id, area_id)
    pdf = labels.sheet(items, f"{site.name}: request labels")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="labels-{site.code}.pdf"',
            "Cache-Control": "no-store",
        },
    )


def _sheet_labels(
    session: Session, settings: Settings, site_id: int, area_id: int | None
) -> tuple[Site, list[labels.Label]]:
    site = get_or_404(session, Site, site_id)
    stmt = sa.select(Asset).where(Asset.site_id == site.id).order_by(Asset.code)
    if area_id is not None:
        area = session.get(Area, area_id)
        if area is None or area.site_id != site.id:
            raise InvalidError(f"area {area_id} is not an area of site {site_id}", where="area_id")
        stmt = stmt.where(Asset.area_id == area_id)
    site_link = svc.link_of(session, site.id, None, create=True)
    items = [labels.Label(svc.link_url(settings, site_link), site.name, "Report a problem")]
    for asset in session.scalars(stmt):
        link = svc.link_of(session, site.id, asset.id, create=True)
        subtitle = " · ".join(part for part in (asset.code, asset.location) if part)
        items.append(labels.Label(svc.link_url(settings, link), asset.name, subtitle))
    return site, items
