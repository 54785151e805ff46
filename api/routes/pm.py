"""Preventive maintenance: PM plans, the forecast of what falls due, meters and their readings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from api.crud import apply, get_or_404
from api.db import run_in_transaction
from api.deps import Crew, Reader, Service, SessionDep, SessionsDep, Staff
from api.errors import ApiError, InvalidError
from api.models import Asset, Meter, MeterReading, PmPlan, PmSchedule, Site, WorkOrder, utcnow
from api.pagination import Limit, Offset, PathId, QueryId, paginate
from api.schemas.common import Page
from api.schemas.pm import (
    CountedReadings,
    CountedResult,
    Forecast,
    ForecastItem,
    MeterPublic,
    MeterReadingCreate,
    MeterReadingPublic,
    PmPlanCreate,
    PmPlanPublic,
    PmPlanUpdate,
)
from api.services import audit, pm

router = APIRouter(tags=["preventive maintenance"])

MeterPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
# Meter rates for the forecast are measured over this much recent history.
RATE_WINDOW = timedelta(days=14)


# -- plans ----------------------------------------------------------------------------------


@router.get("/pm-plans", summary="List PM plans")
def list_plans(
    session: SessionDep,
    _: Crew,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    site_id: QueryId = None,
    asset_id: QueryId = None,
    active: bool | None = None,
) -> Page[PmPlanPublic]:
    """Plans by site, asset (plans on the asset itself) or whether they are active."""
    stmt = sa.select(PmPlan).order_by(PmPlan.id)
    for column, value in (
        (PmPlan.site_id, site_id),
        (PmPlan.asset_id, asset_id),
        (PmPlan.active, active),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, PmPlanPublic, limit, offset)


@router.post("/pm-plans", status_code=201, summary="Create a PM plan")
def create_plan(body: PmPlanCreate, session: SessionDep, principal: Staff) -> PmPlanPublic:
    """A plan on one asset or on every asset of a type in a site.

    Calendar (`every` + `unit`, from the last completion or on a `fixed` schedule), meter
    (`meter_every` of `meter_name`'s lifetime total), or both: whichever comes first. Due plans
    generate one preventive work order each (the background sweep), `lead_days` /
    `meter_lead` ahead.
    """
    get_or_404(session, Site, body.site_id)
    now = utcnow()
    fields = body.model_dump(mode="python")
    if body.starts_at is None:
        fields["starts_at"] = (
            pm.add_interval(now, body.every, body.unit) if body.every and body.unit else now
        )
    plan = PmPlan(**fields, created_by=principal.actor, created_at=now, updated_at=now)
    pm.check_targets(session, plan)
    session.add(plan)
    session.flush()
    # Each target's first cycle counts from now: its meter's total at creation.
    for asset in pm.targets(session, plan):
        pm.schedule_for(session, plan, asset)
    audit.record(
        session, principal.actor, "create", "pm_plan", plan.id, body.model_dump(mode="json")
    )
    session.commit()
    return PmPlanPublic.model_validate(plan)


@router.get("/pm-forecast", summary="What falls due")
def forecast(
    session: SessionDep,
    _: Crew,
    *,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    site_id: QueryId = None,
) -> Forecast:
    """Plans falling due on each asset within `days`: calendar dates, and meter plans projected
    from the meter's rate over the last two weeks; with the estimated labour per site and per
    technician holding the generated order (the rest is `unassigned_minutes`)."""
    now = utcnow()
    until = now + timedelta(days=days)
    stmt = sa.select(PmPlan).where(PmPlan.active).order_by(PmPlan.id)
    if site_id is not None:
        stmt = stmt.where(PmPlan.site_id == site_id)
    items = []
    for plan in session.scalars(stmt):
        for asset in pm.targets(session, plan):
            item = _forecast_item(session, plan, asset, now)
            if item is not None and item.due_at is not None and item.due_at <= until:
                items.append(item)
    items.sort(key=lambda i: (i.due_at or until, i.plan_id, i.asset_id))
    minutes: dict[int, int] = {}
    by_technician: dict[int, int] = {}
    unassigned = 0
    for item in items:
        minutes[item.site_id] = minutes.get(item.site_id, 0) + item.estimated_minutes
        if item.assignee_id is None:
            unassigned += item.estimated_minutes
        else:
            by_technician[item.assignee_id] = (
                by_technician.get(item.assignee_id, 0) + item.estimated_minutes
            )
    return Forecast(
        until=until,
        items=items,
        minutes_by_site=minutes,
        minutes_by_technician=by_technician,
        unassigned_minutes=unassigned,
    )


def _forecast_item(
    session: Session, plan: PmPlan, asset: Asset, now: datetime
) -> ForecastItem | None:
    schedule = session.scalar(
        sa.select(PmSchedule).where(PmSchedule.plan_id == plan.id, PmSchedule.asset_id == asset.id)
    )
    meter_now = pm.meter_total(session, asset.id, plan.meter_name)
    due_at = (
        schedule.next_due_at if schedule is not None else (plan.starts_at if plan.every else None)
    )
    meter_due = None
    if plan.meter_every is not None:
        meter_due = (
            schedule.next_due_meter
            if schedule is not None and schedule.next_due_meter is not None
            else (meter_now or 0.0) + plan.meter_every
        )
    by_meter = _projected(session, asset.id, plan, due=meter_due, total=meter_now, now=now)
    due_by = "calendar"
    if by_meter is not None and (due_at is None or by_meter < due_at):
        due_at, due_by = by_meter, "meter"
    if due_at is None:
        return None
    order = session.execute(
        sa.select(WorkOrder.id, WorkOrder.assignee_id).where(
            WorkOrder.open_key == pm.open_key(plan.id, asset.id)
        )
    ).first()
    return ForecastItem(
        plan_id=plan.id,
        asset_id=asset.id,
        site_id=asset.site_id,
        title=plan.title,
        due_at=due_at,
        due_by=due_by,
        meter_name=plan.meter_name,
        meter_due=meter_due,
        meter_now=meter_now,
        estimated_minutes=plan.estimated_minutes,
        open_work_order_id=None if order is None else order.id,
        assignee_id=None if order is None else order.assignee_id,
    )


def _projected(
    session: Session,
    asset_id: int,
    plan: PmPlan,
    *,
    due: float | None,
    total: float | None,
    now: datetime,
) -> datetime | None:
    """When the meter reaches ``due`` at its recent rate (now if it already has)."""
    if due is None or total is None or plan.meter_name is None:
        return None
    meter = pm.get_meter(session, asset_id, plan.meter_name)
    if meter is None or meter.read_at is None:
        return None
    if total >= due - plan.meter_lead:
        return now
    first = session.execute(
        sa.select(MeterReading.at, MeterReading.total)
        .where(MeterReading.meter_id == meter.id, MeterReading.at >= meter.read_at - RATE_WINDOW)
        .order_by(MeterReading.at)
        .limit(1)
    ).first()
    if first is None or first.at >= meter.read_at or total <= first.total:
        return None  # no rate yet: one reading, or a meter that did not move
    rate = (total - first.total) / (meter.read_at - first.at).total_seconds()
    return meter.read_at + timedelta(seconds=(due - plan.meter_lead - total) / rate)


@router.get("/pm-plans/{plan_id}", summary="Get a PM plan")
def get_plan(plan_id: PathId, session: SessionDep, _: Crew) -> PmPlanPublic:
    """One plan."""
    return PmPlanPublic.model_validate(get_or_404(session, PmPlan, plan_id))


@router.patch("/pm-plans/{plan_id}", summary="Change a PM plan")
def update_plan(
    plan_id: PathId, body: PmPlanUpdate, session: SessionDep, principal: Staff
) -> PmPlanPublic:
    """Change a plan's text, checklist, lead times or activity (not its triggers)."""
    plan = get_or_404(session, PmPlan, plan_id, lock=True)
    changes = body.model_dump(exclude_unset=True, mode="python")
    if plan.meter_every is not None and changes.get("meter_lead", 0) >= plan.meter_every:
        raise InvalidError("'meter_lead' must be less than 'meter_every'", where="meter_lead")
    apply(plan, changes)
    plan.updated_at = utcnow()
    audit.record(
        session,
        principal.actor,
        "update",
        "pm_plan",
        plan.id,
        body.model_dump(exclude_unset=True, mode="json"),
    )
    session.commit()
    return PmPlanPublic.model_validate(plan)


@router.delete("/pm-plans/{plan_id}", status_code=204, summary="Delete a PM plan")
def delete_plan(plan_id: PathId, session: SessionDep, principal: Staff) -> Response:
    """Delete a plan; the orders it made stay (unlinked)."""
    plan = get_or_404(session, PmPlan, plan_id)
    # The orders it made keep their history; an unfinished one no longer blocks anything.
    session.execute(
        sa.update(WorkOrder).where(WorkOrder.pm_plan_id == plan_id).values(pm_plan_id=None)
    )
    session.delete(plan)
    audit.record(session, principal.actor, "delete", "pm_plan", plan_id, {"title": plan.title})
    session.commit()
    return Response(status_code=204)


# -- meters ---------------------------------------------------------------------------------


@router.get("/meters", summary="List meters")
def list_meters(
    session: SessionDep,
    _: Reader,
    *,
    limit: Limit = 100,
    offset: Offset = 0,
    asset_id: QueryId = None,
) -> Page[MeterPublic]:
    """Meters (running hours, starts, counted quantities), by asset."""
    stmt = sa.select(Meter).order_by(Meter.asset_id, Meter.name)
    if asset_id is not None:
        stmt = stmt.where(Meter.asset_id == asset_id)
    return paginate(session, stmt, MeterPublic, limit, offset)


@router.get("/meters/{meter_id}/readings", summary="A meter's readings")
def list_meter_readings(
    meter_id: PathId,
    session: SessionDep,
    _: Reader,
    *,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[MeterReadingPublic]:
    """A meter's readings, newest first (a time series to chart)."""
    get_or_404(session, Meter, meter_id)
    stmt = (
        sa.select(MeterReading)
        .where(MeterReading.meter_id == meter_id)
        .order_by(MeterReading.at.desc())
    )
    return paginate(session, stmt, MeterReadingPublic, limit, offset)


@router.post(
    "/assets/{asset_id}/meters/{name}/readings",
    status_code=201,
    summary="Read a meter by hand",
    responses={200: {"model": MeterReadingPublic, "description": "The same reading again."}},
)
def read_meter(
    asset_id: PathId,
    name: MeterPath,
    body: MeterReadingCreate,
    *,
    response: Response,
    sessions: SessionsDep,
    principal: Crew,
) -> MeterReadingPublic:
    """A manual reading (an hour-meter read off its plate): never lower than the last one
    unless `reset` (the meter was replaced or reset), never older than it."""
    at = body.at or utcnow()

    def work(session: Session) -> MeterReadingPublic:
        get_or_404(session, Asset, asset_id)
        meter, reading = pm.record_reading(
            session,
            asset_id,
            name,
            value=body.value,
            at=at,
            reset=body.reset,
            unit=body.unit,
            source=principal.actor,
        )
        if reading is None:  # a repeat: answer with the reading it repeats
            response.status_code = 200
            last = session.scalar(
                sa.select(MeterReading)
                .where(MeterReading.meter_id == meter.id)
                .order_by(MeterReading.at.desc())
                .limit(1)
            )
            assert last is not None  # the meter has been read (that is what it repeats)
            return MeterReadingPublic.model_validate(last)
        session.flush()
        audit.record(
            session,
            principal.actor,
            "read",
            "meter",
            meter.id,
            {"value": body.value, "reset": body.reset},
        )
        return MeterReadingPublic.model_validate(reading)

    return run_in_transaction(sessions, work)


@router.post("/meters/counted", summary="Meter values counted from telemetry")
def post_counted(body: CountedReadings, sessions: SessionsDep, principal: Service) -> CountedResult:
    """The analytics service's counts (running hours, starts…), by site and asset code.

    Each reading stands alone: one that is refused (unknown asset, lower than the last without
    `reset`, older than the last) is listed with its reason and the others are kept.
    """

    def work(session: Session) -> CountedResult:
        codes = {(r.site, r.asset) for r in body.readings}
        rows = session.execute(
            sa.select(Site.code, Asset.code, Asset.id)
            .join(Site, Site.id == Asset.site_id)
            .where(sa.tuple_(Site.code, Asset.code).in_(codes))
        ).all()
        ids = {(site, asset): asset_id for site, asset, asset_id in rows}
        accepted = duplicates = 0
        rejected: list[dict[str, str]] = []
        for item in sorted(body.readings, key=lambda r: r.at):
            asset_id = ids.get((item.site, item.asset))
            where = f"{item.site}/{item.asset}/{item.name}"
            if asset_id is None:
                rejected.append({"meter": where, "reason": "unknown asset"})
                continue
            try:
                with session.begin_nested():
                    _, reading = pm.record_reading(
                        session,
                        asset_id,
                        item.name,
                        value=item.value,
                        at=item.at,
                        reset=item.reset,
                        unit=item.unit,
                        source=principal.actor,
                    )
            except ApiError as exc:
                rejected.append({"meter": where, "reason": exc.detail})
                continue
            accepted += reading is not None
            duplicates += reading is None
        return CountedResult(accepted=accepted, duplicates=duplicates, rejected=rejected)

    return run_in_transaction(sessions, work)
