"""Work requests by API (a helpdesk or front-office system files them) and their triage."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from api.crud import get_or_404
from api.deps import Reader, SessionDep, SettingsDep, Staff
from api.errors import InvalidError, NotFoundError
from api.models import Asset, Site, WorkRequest, utcnow
from api.pagination import Limit, Offset, PathId, QueryId
from api.schemas.common import Page, Problem
from api.schemas.requests import (
    RequestStatus,
    Triage,
    WorkRequestCreate,
    WorkRequestCreated,
    WorkRequestPublic,
)
from api.services import requests as svc

router = APIRouter(tags=["requests"])


@router.get("/requests", summary="List work requests")
def list_requests(
    session: SessionDep,
    _: Staff,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    site_id: QueryId = None,
    asset_id: QueryId = None,
    status: Annotated[RequestStatus | None, Query()] = None,
) -> Page[WorkRequestPublic]:
    """Requests, newest first: `status=new` is the triage list."""
    stmt = sa.select(WorkRequest).order_by(WorkRequest.id.desc())
    for column, value in (
        (WorkRequest.site_id, site_id),
        (WorkRequest.asset_id, asset_id),
        (WorkRequest.status, status),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.limit(limit).offset(offset)).all()
    items = [svc.public(row) for row in rows]
    return Page[WorkRequestPublic](items=items, total=total or 0, limit=limit, offset=offset)


@router.post("/requests", status_code=201, summary="File a work request")
def create_request(
    body: WorkRequestCreate, session: SessionDep, settings: SettingsDep, principal: Reader
) -> WorkRequestCreated:
    """A problem reported by another system; the answer carries the requester's status link
    (`status_url`), shown this once: pass it on to the person who reported it."""
    site_id = body.site_id
    if body.asset_id is not None:
        asset = session.get(Asset, body.asset_id)
        if asset is None:
            raise InvalidError(f"asset {body.asset_id} does not exist", where="asset_id")
        if site_id is not None and site_id != asset.site_id:
            raise InvalidError("the asset is not in that site", where="site_id")
        site_id = asset.site_id
    elif site_id is not None and session.get(Site, site_id) is None:
        raise InvalidError(f"site {site_id} does not exist", where="site_id")
    assert site_id is not None
    fields = body.model_dump(exclude={"site_id", "asset_id"})
    filed = svc.file(
        session, site_id=site_id, asset_id=body.asset_id, fields=fields,
        source=principal.actor, now=utcnow(),
    )  # fmt: skip
    session.commit()
    url = f"{svc.base_url(settings)}{svc.TRACK_PATH}{filed.token}"
    return WorkRequestCreated(
        **svc.public(filed.request).model_dump(), status_token=filed.token, status_url=url
    )


@router.get("/requests/{request_id}", summary="Get a work request")
def get_request(request_id: PathId, session: SessionDep, _: Staff) -> WorkRequestPublic:
    """One request."""
    return svc.public(get_or_404(session, WorkRequest, request_id))


@router.get(
    "/requests/{request_id}/photo",
    summary="The photo of a work request",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def get_request_photo(request_id: PathId, session: SessionDep, _: Staff) -> Response:
    """The photo the requester attached (404 without one)."""
    request = get_or_404(session, WorkRequest, request_id)
    if request.photo is None:
        raise NotFoundError(f"request {request_id} has no photo")
    return Response(
        request.photo,
        media_type=request.photo_type or "application/octet-stream",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )


@router.post(
    "/requests/{request_id}/triage",
    summary="Accept, merge or decline a work request",
    responses={409: {"model": Problem, "description": "Already triaged."}},
)
def triage_request(
    request_id: PathId,
    body: Triage,
    session: SessionDep,
    settings: SettingsDep,
    principal: Staff,
) -> WorkRequestPublic:
    """`accept` opens a corrective work order linked to the request; `merge` links it to an
    open order of the same asset; `decline` needs a reason the requester will read."""
    request = get_or_404(session, WorkRequest, request_id, lock=True)
    svc.triage(session, request, body, principal=principal, policy=settings.policy, now=utcnow())
    session.commit()
    return svc.public(request)
