"""Asset status: the analytics service posts each asset's condition; the crew reads the fleet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.db import run_in_transaction
from api.deps import SERVICE, Crew, RoleCheck, SessionDep, SessionsDep
from api.models import utcnow
from api.pagination import QueryId
from api.schemas.asset_status import AssetStatusPost, AssetStatusPublic, AssetStatusResult
from api.security import Principal
from api.services import asset_status as svc

router = APIRouter(tags=["asset-status"])
# Only the analytics service reports conditions (not admins: a hand-typed status would mask it).
ServiceOnly = Annotated[Principal, Depends(RoleCheck(SERVICE))]


@router.post("/asset-status", summary="Post asset conditions (analytics service)")
def post_asset_status(
    body: AssetStatusPost, sessions: SessionsDep, _: ServiceOnly
) -> AssetStatusResult:
    """Keep the latest status of each asset (1..5000 items per batch).

    An item older than the stored one is ignored (`ignored_stale`), so out-of-order retries
    are harmless. An unknown site or asset rejects the whole batch (422 naming the item).
    """
    now = utcnow()
    accepted, ignored = run_in_transaction(sessions, lambda s: svc.store(s, body.items, now))
    return AssetStatusResult(accepted=accepted, ignored_stale=ignored)


@router.get("/asset-status", summary="List asset conditions")
def list_asset_status(
    session: SessionDep, _: Crew, *, site_id: QueryId = None
) -> list[AssetStatusPublic]:
    """The latest status of every asset that has one, by site and asset code, with its age."""
    return svc.listing(session, utcnow(), site_id)
