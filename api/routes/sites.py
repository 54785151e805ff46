"""Sites and their areas: the top of the asset hierarchy."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response

from api.crud import apply, conflicts_as_409, get_or_404
from api.deps import Admin, Reader, SessionDep, Staff
from api.models import Area, Site
from api.pagination import Limit, Offset, PathId, QueryId, QueryText, paginate
from api.schemas.assets import AreaCreate, AreaPublic, SiteCreate, SitePublic, SiteUpdate
from api.schemas.common import Page
from api.services import audit

router = APIRouter(tags=["sites"])


@router.get("/sites", summary="List sites")
def list_sites(
    session: SessionDep,
    _: Reader,
    limit: Limit = 50,
    offset: Offset = 0,
    code: QueryText = None,
) -> Page[SitePublic]:
    """Sites, by code, optionally one code only."""
    stmt = sa.select(Site).order_by(Site.code)
    if code is not None:
        stmt = stmt.where(Site.code == code)
    return paginate(session, stmt, SitePublic, limit, offset)


@router.post("/sites", status_code=201, summary="Create a site")
def create_site(body: SiteCreate, session: SessionDep, principal: Staff) -> SitePublic:
    """A new site; its code must be unique (409 otherwise)."""
    site = Site(**body.model_dump())
    with conflicts_as_409(f"site {body.code!r}"):
        session.add(site)
        session.flush()
        audit.record(session, principal.actor, "create", "site", site.id, body.model_dump())
        session.commit()
    return SitePublic.model_validate(site)


@router.get("/sites/{site_id}", summary="Get a site")
def get_site(site_id: PathId, session: SessionDep, _: Reader) -> SitePublic:
    """One site."""
    return SitePublic.model_validate(get_or_404(session, Site, site_id))


@router.patch("/sites/{site_id}", summary="Change a site")
def update_site(
    site_id: PathId, body: SiteUpdate, session: SessionDep, principal: Staff
) -> SitePublic:
    """Change a site's name or time zone."""
    site = get_or_404(session, Site, site_id, lock=True)
    changes = body.model_dump(exclude_unset=True)
    apply(site, changes)
    audit.record(session, principal.actor, "update", "site", site.id, changes)
    session.commit()
    return SitePublic.model_validate(site)


@router.delete("/sites/{site_id}", status_code=204, summary="Delete a site and all it holds")
def delete_site(site_id: PathId, session: SessionDep, principal: Admin) -> Response:
    """Delete a site with its areas, assets, alerts and work orders (admin only)."""
    site = get_or_404(session, Site, site_id)
    session.delete(site)
    audit.record(session, principal.actor, "delete", "site", site_id, {"code": site.code})
    session.commit()
    return Response(status_code=204)


@router.get("/areas", summary="List areas")
def list_areas(
    session: SessionDep,
    _: Reader,
    limit: Limit = 50,
    offset: Offset = 0,
    site_id: QueryId = None,
) -> Page[AreaPublic]:
    """Areas, optionally of one site."""
    stmt = sa.select(Area).order_by(Area.site_id, Area.name)
    if site_id is not None:
        stmt = stmt.where(Area.site_id == site_id)
    return paginate(session, stmt, AreaPublic, limit, offset)


@router.post("/areas", status_code=201, summary="Create an area")
def create_area(body: AreaCreate, session: SessionDep, principal: Staff) -> AreaPublic:
    """A new area in a site (names are unique per site)."""
    get_or_404(session, Site, body.site_id)
    area = Area(**body.model_dump())
    with conflicts_as_409(f"area {body.name!r}"):
        session.add(area)
        session.flush()
        audit.record(session, principal.actor, "create", "area", area.id, body.model_dump())
        session.commit()
    return AreaPublic.model_validate(area)
