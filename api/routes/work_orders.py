"""Work orders: by hand or from alerts; state transitions; ETag/If-Match; idempotent creates."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.orm import Session

from api.crud import get_or_404
from api.db import run_in_transaction
from api.deps import Crew, ReadSessionDep, SessionDep, SessionsDep, SettingsDep
from api.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
)
from api.listing import NOT_MODIFIED, Cursor, CursorPage, list_response
from api.models import Asset, User, WorkOrder, WorkOrderEvidence, utcnow
from api.pagination import Limit, Offset, PathId, QueryId, QueryText
from api.schemas.common import Problem
from api.schemas.work_orders import (
    EvidencePublic,
    WorkOrderCreate,
    WorkOrderPublic,
    WorkOrderState,
    WorkOrderTransition,
    WorkOrderUpdate,
    WorkType,
)
from api.security import Principal
from api.services import audit, events
from api.services import work_orders as svc

router = APIRouter(tags=["work-orders"])

IfMatch = Annotated[
    str | None,
    Header(max_length=200, description="The ETag last read; 412 if the order changed since."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Repeat a create safely: the same key returns the same work order.",
    ),
]


def etag(order: WorkOrder) -> str:
    """A strong validator of an order's version."""
    return f'"{order.id}.{order.version}"'


def check_if_match(order: WorkOrder, if_match: str | None) -> None:
    """412 unless If-Match is absent, '*', or names the current version."""
    if if_match is None:
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in tags and etag(order) not in tags:
        raise PreconditionFailedError(
            f"the work order is now at {etag(order)}; fetch it again", current_etag=etag(order)
        )


def evidence_of(session: Session, order_id: int) -> list[EvidencePublic]:
    """The alert occurrences behind an order, oldest first."""
    evidence = session.scalars(
        sa.select(WorkOrderEvidence)
        .where(WorkOrderEvidence.work_order_id == order_id)
        .order_by(WorkOrderEvidence.id)
    ).all()
    return [EvidencePublic.model_validate(e) for e in evidence]


def public(
    session: Session,
    order: WorkOrder,
    response: Response | None = None,
    evidence: list[EvidencePublic] | None = None,
) -> WorkOrderPublic:
    """The order with its evidence (read in session unless given), and its ETag on response."""
    result = WorkOrderPublic.model_validate(order)
    result.evidence = evidence_of(session, order.id) if evidence is None else evidence
    if response is not None:
        response.headers["ETag"] = etag(order)
    return result


def order_to_change(
    read: Session, session: Session, order_id: int, principal: Principal, if_match: str | None
) -> tuple[WorkOrder, list[EvidencePublic]]:
    """The order (in session, at the version read) and its evidence, read and checked in read.

    The reads and the If-Match check happen before the writing session begins, so on SQLite
    they do not hold the one write lock (BEGIN IMMEDIATE) that every writer queues for: it
    is taken for the UPDATE, the audit row and the change counter only (session 11). The
    UPDATE is `… WHERE version = <read>` (the mapper's version column): an order changed in
    between makes it fail with StaleDataError, answered 412, as with two writers on
    PostgreSQL. Given the same session twice (the UI's actions), it reads in that one.
    """
    seen = visible_order(read, order_id, principal, if_match)
    evidence = evidence_of(read, order_id)
    if read is session:
        return seen, evidence
    order = session.merge(seen, load=False)  # no SQL: the write session trusts the row read
    read.rollback()  # ends the read snapshot and frees its connection before the write
    return order, evidence


def visible_order(
    session: Session, order_id: int, principal: Principal, if_match: str | None = None
) -> WorkOrder:
    """The order if the caller may see it (technicians: own or unassigned), else 404.

    A stale If-Match is checked first: a technician who lost a race to claim an order gets
    412 (someone changed it), not a 404 because it is now another technician's.
    """
    # One statement reads the row and whether the caller may see it, so both come from the same
    # snapshot: a second query could see the winner's commit and answer 404 instead of 412.
    visible_expr = sa.case((svc.visible_to(principal), True), else_=False)
    row = session.execute(
        sa.select(WorkOrder, visible_expr).where(WorkOrder.id == order_id)
    ).first()
    if row is None:
        raise NotFoundError(f"work order {order_id} does not exist")
    order: WorkOrder = row[0]
    check_if_match(order, if_match)
    if not row[1]:
        raise NotFoundError(f"work order {order_id} does not exist")
    return order


@router.get(
    "/work-orders",
    summary="List work orders",
    response_model=CursorPage[WorkOrderPublic],
    responses=NOT_MODIFIED,
)
def list_work_orders(
    request: Request,
    session: SessionDep,
    principal: Crew,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
    site_id: QueryId = None,
    asset_id: QueryId = None,
    assignee_id: QueryId = None,
    state: Annotated[WorkOrderState | None, Query()] = None,
    work_type: Annotated[WorkType | None, Query()] = None,
    priority: Annotated[int | None, Query(ge=1, le=4)] = None,
    failure_mode: QueryText = None,
) -> Response:
    """Work orders, newest first; technicians see theirs and unassigned ones.

    `ETag` / `If-None-Match` (304 while nothing changed); `next_cursor` continues after the
    page (then without `total`)."""
    stmt = sa.select(WorkOrder).where(svc.visible_to(principal))
    for column, value in (
        (WorkOrder.site_id, site_id),
        (WorkOrder.asset_id, asset_id),
        (WorkOrder.assignee_id, assignee_id),
        (WorkOrder.state, state),
        (WorkOrder.work_type, work_type),
        (WorkOrder.priority, priority),
        (WorkOrder.failure_mode, failure_mode),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return list_response(
        request, session, principal, stmt, WorkOrderPublic, table=WorkOrder.__table__,
        keys=[WorkOrder.id], limit=limit, offset=offset, cursor=cursor,
    )  # fmt: skip


@router.post(
    "/work-orders",
    status_code=201,
    summary="Create a work order",
    responses={200: {"model": WorkOrderPublic, "description": "Replayed Idempotency-Key."}},
)
def create_work_order(
    body: WorkOrderCreate,
    *,
    response: Response,
    sessions: SessionsDep,
    principal: Crew,
    idempotency_key: IdempotencyKey = None,
) -> WorkOrderPublic:
    """A work order by hand, `open` (people without accounts file requests instead).

    With `Idempotency-Key`, a repeated request returns the first one's order (200); the same
    key with another body is refused (422). One open order per asset and failure mode (409).
    """
    fingerprint = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()

    def work(session: Session) -> tuple[WorkOrderPublic, bool, str]:
        if idempotency_key is not None:
            existing = session.scalar(
                sa.select(WorkOrder).where(
                    WorkOrder.created_by == principal.actor,
                    WorkOrder.idempotency_key == idempotency_key,
                )
            )
            if existing is not None:
                if existing.request_hash != fingerprint:
                    raise InvalidError(
                        "this Idempotency-Key was used with a different request body",
                        where="Idempotency-Key",
                    )
                return public(session, existing), False, etag(existing)
        order = _new_order(
            session, body, principal, key=idempotency_key, fingerprint=fingerprint, now=utcnow()
        )
        return public(session, order), True, etag(order)

    result, created, tag = run_in_transaction(sessions, work)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = tag
    return result


def _new_order(
    session: Session,
    body: WorkOrderCreate,
    principal: Principal,
    *,
    key: str | None,
    fingerprint: str,
    now: datetime,
) -> WorkOrder:
    asset = get_or_404(session, Asset, body.asset_id)
    existing = svc.find_open(session, asset.id, body.failure_mode)
    if existing is not None:
        raise ConflictError(
            f"work order {existing.id} is already open for this asset and failure mode",
            work_order_id=existing.id,
        )
    if principal.role == "technician" and body.assignee_id not in (None, principal.user_id):
        # As in transitions: a technician takes work for themselves, never hands it out.
        raise ForbiddenError("technicians may only assign work orders to themselves")
    if body.assignee_id is not None and session.get(User, body.assignee_id) is None:
        raise InvalidError(f"user {body.assignee_id} does not exist", where="assignee_id")
    fields = body.model_dump(exclude={"checklist"})
    order = WorkOrder(
        **fields,
        site_id=asset.site_id,
        checklist=[item.model_dump() for item in body.checklist],
        open_key=svc.open_key(asset.id, body.failure_mode),
        # One way to ask for work: a request (`/requests`), triaged into an order. Crew
        # members' own orders open directly (a technician logs the job they found).
        state="open",
        created_by=principal.actor,
        idempotency_key=key,
        request_hash=fingerprint,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    audit.record(session, principal.actor, "create", "work_order", order.id, body.model_dump())
    events.work_order_event(session, order, "create")
    return order


@router.get("/work-orders/{order_id}", summary="Get a work order")
def get_work_order(
    order_id: PathId, response: Response, session: SessionDep, principal: Crew
) -> WorkOrderPublic:
    """One work order with its evidence; the ETag header is its version for If-Match."""
    return public(session, visible_order(session, order_id, principal), response)


_PRECONDITION: dict[int | str, dict[str, Any]] = {
    412: {"model": Problem, "description": "If-Match is stale."}
}


@router.patch(
    "/work-orders/{order_id}", summary="Change a work order's fields", responses=_PRECONDITION
)
def update_work_order(
    order_id: PathId,
    body: WorkOrderUpdate,
    *,
    response: Response,
    session: SessionDep,
    read: ReadSessionDep,
    principal: Crew,
    if_match: IfMatch = None,
) -> WorkOrderPublic:
    """Checklist, parts, labour, downtime, notes, priority, due date (412 on a stale If-Match)."""
    order, evidence = order_to_change(read, session, order_id, principal, if_match)
    svc.update(session, order, body, principal, utcnow())
    session.commit()
    # After the commit, from what was read and written: no query, so nothing in the lock.
    return public(session, order, response, evidence)


@router.post(
    "/work-orders/{order_id}/transitions",
    summary="Move a work order to another state",
    responses={
        **_PRECONDITION,
        409: {"model": Problem, "description": "Illegal transition; `allowed` lists targets."},
    },
)
def transition_work_order(
    order_id: PathId,
    body: WorkOrderTransition,
    *,
    response: Response,
    session: SessionDep,
    read: ReadSessionDep,
    settings: SettingsDep,
    principal: Crew,
    if_match: IfMatch = None,
) -> WorkOrderPublic:
    """open → assigned → in_progress ⇄ on_hold → completed → verified | reopened;
    cancelled before completion. Technicians claim, start, hold and complete their own."""
    order, evidence = order_to_change(read, session, order_id, principal, if_match)
    svc.transition(session, order, body, principal=principal, policy=settings.policy, now=utcnow())
    session.commit()
    return public(session, order, response, evidence)  # as in update_work_order
