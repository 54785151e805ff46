"""The on-call rota: weekly shifts and overrides per site and level, and who is on call now."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from api.crud import get_or_404
from api.deps import Crew, SessionDep, Staff
from api.errors import InvalidError
from api.models import OnCallOverride, OnCallShift, Site, User, utcnow
from api.pagination import Limit, Offset, PathId, QueryId, paginate
from api.schemas.common import Page, UtcDatetime
from api.schemas.notifications import (
    OnCallLevel,
    OnCallNow,
    OnCallPerson,
    OverrideCreate,
    OverridePublic,
    ShiftCreate,
    ShiftPublic,
)
from api.services import audit
from api.services.notify import rota

router = APIRouter(tags=["on-call"])


def _check_refs(session: SessionDep, site_id: int, user_id: int) -> None:
    get_or_404(session, Site, site_id)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidError(f"user {user_id} does not exist or is inactive", where="user_id")


@router.post("/on-call/shifts", status_code=201, summary="Add a weekly on-call shift")
def create_shift(body: ShiftCreate, session: SessionDep, principal: Staff) -> ShiftPublic:
    """A weekly shift: on `weekday` from `starts` to `ends` (site time), `user_id` holds
    `level` (1 on-call technician, 2 shift lead, 3 facilities manager)."""
    _check_refs(session, body.site_id, body.user_id)
    shift = OnCallShift(**body.model_dump(), created_at=utcnow())
    session.add(shift)
    session.flush()
    audit.record(session, principal.actor, "create", "on_call_shift", shift.id, body.model_dump())
    session.commit()
    return ShiftPublic.model_validate(shift)


@router.get("/on-call/shifts", summary="List on-call shifts")
def list_shifts(
    session: SessionDep, _: Crew, *, limit: Limit = 100, offset: Offset = 0, site_id: QueryId = None
) -> Page[ShiftPublic]:
    """Shifts by site, level, weekday and start."""
    stmt = sa.select(OnCallShift).order_by(
        OnCallShift.site_id, OnCallShift.level, OnCallShift.weekday, OnCallShift.starts
    )
    if site_id is not None:
        stmt = stmt.where(OnCallShift.site_id == site_id)
    return paginate(session, stmt, ShiftPublic, limit, offset)


@router.delete("/on-call/shifts/{shift_id}", status_code=204, summary="Remove a shift")
def delete_shift(shift_id: PathId, session: SessionDep, principal: Staff) -> Response:
    """Remove a weekly shift."""
    shift = get_or_404(session, OnCallShift, shift_id, lock=True)
    session.delete(shift)
    audit.record(session, principal.actor, "delete", "on_call_shift", shift_id)
    session.commit()
    return Response(status_code=204)


@router.post("/on-call/overrides", status_code=201, summary="Add an on-call override")
def create_override(body: OverrideCreate, session: SessionDep, principal: Staff) -> OverridePublic:
    """`user_id` holds `level` from `starts_at` to `ends_at`, whatever the shifts say (the
    latest override wins where two overlap)."""
    _check_refs(session, body.site_id, body.user_id)
    row = OnCallOverride(**body.model_dump(), created_by=principal.actor, created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(
        session, principal.actor, "create", "on_call_override", row.id, body.model_dump(mode="json")
    )
    session.commit()
    return OverridePublic.model_validate(row)


@router.get("/on-call/overrides", summary="List on-call overrides")
def list_overrides(
    session: SessionDep,
    _: Crew,
    *,
    limit: Limit = 100,
    offset: Offset = 0,
    site_id: QueryId = None,
    current: Annotated[bool, Query(description="Only those not over yet.")] = False,
) -> Page[OverridePublic]:
    """Overrides by start."""
    stmt = sa.select(OnCallOverride).order_by(OnCallOverride.starts_at, OnCallOverride.id)
    if site_id is not None:
        stmt = stmt.where(OnCallOverride.site_id == site_id)
    if current:
        stmt = stmt.where(OnCallOverride.ends_at > utcnow())
    return paginate(session, stmt, OverridePublic, limit, offset)


@router.delete("/on-call/overrides/{override_id}", status_code=204, summary="Remove an override")
def delete_override(override_id: PathId, session: SessionDep, principal: Staff) -> Response:
    """Remove an override."""
    row = get_or_404(session, OnCallOverride, override_id, lock=True)
    session.delete(row)
    audit.record(session, principal.actor, "delete", "on_call_override", override_id)
    session.commit()
    return Response(status_code=204)


def on_call_now(session: SessionDep, site_id: int, at: UtcDatetime) -> OnCallNow:
    """Who holds each level of the site's rota at an instant."""
    levels = [
        OnCallLevel(
            level=level,
            name=rota.LEVEL_NAMES.get(level, f"level {level}"),
            users=[OnCallPerson.model_validate(u) for u in users],
        )
        for level, users in rota.now_on_call(session, site_id, at).items()
    ]
    return OnCallNow(site_id=site_id, at=at, levels=levels)


@router.get("/on-call/now", summary="Who is on call")
def get_on_call_now(
    session: SessionDep,
    _: Crew,
    site_id: Annotated[int, Query(ge=1, le=2_147_483_647)],
    at: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
) -> OnCallNow:
    """Each level of the site's rota and who holds it now (or at `at`), overrides applied."""
    get_or_404(session, Site, site_id)
    return on_call_now(session, site_id, at or utcnow())
