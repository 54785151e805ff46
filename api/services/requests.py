"""Work-request rules: filing, request links (label tokens), triage, and the requester's view."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import ConflictError, InvalidError, NotFoundError
from api.models import Asset, RequestLink, Site, User, WorkOrder, WorkRequest
from api.schemas.requests import Progress, Triage, WorkRequestPublic
from api.security import Principal, hash_token
from api.services import audit, events
from api.settings import PolicySettings, Settings

# A request's urgency as a work-order priority (1 = most urgent).
PRIORITY = {"urgent": 1, "normal": 3, "low": 4}
# Orders a request can be merged into: not finished yet.
MERGEABLE = ("open", "assigned", "in_progress", "on_hold", "reopened")
FORM_PATH = "/q/"  # the public request page of a link: /q/<token>
TRACK_PATH = "/t/"  # a requester's status page: /t/<status token>


def base_url(settings: Settings) -> str:
    """The public base URL labels and status links use."""
    return settings.requests.public_url or settings.notify.public_url


def link_of(session: Session, site_id: int, asset_id: int | None, *, create: bool) -> RequestLink:
    """The request link of an asset (or of a site's site-wide page), made on first use."""
    stmt = sa.select(RequestLink).where(RequestLink.site_id == site_id)
    stmt = stmt.where(
        RequestLink.asset_id == asset_id if asset_id is not None else RequestLink.asset_id.is_(None)
    )
    link = session.scalar(stmt)
    if link is None:
        if not create:
            raise NotFoundError("no request link yet")
        # 128 random bits: a label can be photographed, but no one can guess another's.
        link = RequestLink(token=secrets.token_urlsafe(16), site_id=site_id, asset_id=asset_id)
        session.add(link)
        session.flush()
    return link


def rotate(session: Session, link: RequestLink, actor: str, now: datetime) -> None:
    """Give a link a new token: every label printed before stops working."""
    link.token = secrets.token_urlsafe(16)
    link.rotated_at = now
    audit.record(session, actor, "rotate", "request_link", link.id, {"asset_id": link.asset_id})


def link_url(settings: Settings, link: RequestLink) -> str:
    """What a label's QR code holds."""
    return f"{base_url(settings)}{FORM_PATH}{link.token}"


def resolve(session: Session, token: str) -> tuple[RequestLink, Site, Asset | None]:
    """The link, site and asset of a public page's token (NotFoundError for any other)."""
    link = session.scalar(sa.select(RequestLink).where(RequestLink.token == token))
    if link is None:
        raise NotFoundError("this label is not (or no longer) valid")
    site = session.get(Site, link.site_id)
    asset = session.get(Asset, link.asset_id) if link.asset_id is not None else None
    assert site is not None
    return link, site, asset


@dataclass
class Filed:
    """A new request and the status token its requester was given (kept only as a hash)."""

    request: WorkRequest
    token: str


def file(
    session: Session,
    *,
    site_id: int,
    asset_id: int | None,
    fields: dict[str, object],
    source: str,
    now: datetime,
    photo: tuple[bytes, str] | None = None,
) -> Filed:
    """Store a new request; the caller commits."""
    token = secrets.token_urlsafe(24)
    request = WorkRequest(
        site_id=site_id,
        asset_id=asset_id,
        status="new",
        status_token_hash=hash_token(token),
        source=source,
        created_at=now,
        updated_at=now,
        photo=photo[0] if photo else None,
        photo_type=photo[1] if photo else None,
        **fields,
    )
    session.add(request)
    session.flush()
    audit.record(session, source, "create", "work_request", request.id, dict(fields))
    return Filed(request, token)


def public(request: WorkRequest) -> WorkRequestPublic:
    """The staff view of a request."""
    result = WorkRequestPublic.model_validate(request)
    result.has_photo = request.photo is not None
    return result


def triage(
    session: Session,
    request: WorkRequest,
    body: Triage,
    *,
    principal: Principal,
    policy: PolicySettings,
    now: datetime,
) -> WorkOrder | None:
    """Accept, merge or decline a new request; the order it is now linked to (if any)."""
    if request.status != "new":
        raise ConflictError(
            f"request {request.id} was already triaged ({request.status})", current=request.status
        )
    order: WorkOrder | None = None
    if body.action == "accept":
        order = _accept(session, request, body, principal=principal, policy=policy, now=now)
        request.status = "accepted"
    elif body.action == "merge":
        order = _merge_target(session, request, body.work_order_id or 0)
        order.notes = [
            *order.notes,
            {
                "at": now.isoformat(),
                "author": principal.actor,
                "text": f"request #{request.id} merged: {request.description[:500]}",
            },
        ]
        order.updated_at = now
        request.status = "merged"
    else:
        request.status = "declined"
        request.decline_reason = body.reason
    request.work_order_id = order.id if order is not None else None
    request.triaged_at = request.updated_at = now
    request.triaged_by = principal.actor
    audit.record(
        session, principal.actor, body.action, "work_request", request.id,
        {"work_order_id": request.work_order_id, "reason": body.reason},
    )  # fmt: skip
    return order


def _accept(
    session: Session,
    request: WorkRequest,
    body: Triage,
    *,
    principal: Principal,
    policy: PolicySettings,
    now: datetime,
) -> WorkOrder:
    if request.asset_id is None and body.asset_id is not None:
        asset = session.get(Asset, body.asset_id)
        if asset is None or asset.site_id != request.site_id:
            raise InvalidError(
                f"asset {body.asset_id} is not an asset of the request's site", where="asset_id"
            )
        request.asset_id = asset.id
    if request.asset_id is None:
        raise InvalidError(
            "a site-wide request names no asset: name it ('asset_id'), or merge or decline it",
            where="asset_id",
        )
    if body.assignee_id is not None:
        user = session.get(User, body.assignee_id)
        if user is None or not user.active or user.role != "technician":
            raise InvalidError(
                f"user {body.assignee_id} is not an active technician", where="assignee_id"
            )
    priority = body.priority or PRIORITY.get(request.urgency, 3)
    text = request.description.strip().splitlines()[0] if request.description.strip() else ""
    order = WorkOrder(
        site_id=request.site_id,
        asset_id=request.asset_id,
        # The requester's own words (ours would be in one language for every reader).
        title=(body.title or text or f"#{request.id}")[:200],
        description="\n".join(
            part
            for part in (
                request.description,
                # No words of ours: the order is read in each technician's own language.
                f"📍 {request.location}" if request.location else "",
                f"☎ {request.requester_name} {request.requester_phone}".strip()
                if request.requester_name or request.requester_phone
                else "",
            )
            if part
        ),
        work_type="corrective",
        state="assigned" if body.assignee_id else "open",
        assignee_id=body.assignee_id,
        priority=priority,
        due_at=now + timedelta(hours=policy.due_hours.get(priority, 72)),
        created_by=principal.actor,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    audit.record(
        session, principal.actor, "create", "work_order", order.id, {"from_request": request.id}
    )
    events.work_order_event(session, order, "create")
    return order


def _merge_target(session: Session, request: WorkRequest, order_id: int) -> WorkOrder:
    order = session.get(WorkOrder, order_id, with_for_update=True)
    if order is None or order.site_id != request.site_id:
        raise InvalidError(f"work order {order_id} does not exist", where="work_order_id")
    if request.asset_id is not None and order.asset_id != request.asset_id:
        raise InvalidError(
            f"work order {order_id} is for another asset than the request", where="work_order_id"
        )
    if order.state not in MERGEABLE:
        raise ConflictError(f"work order {order_id} is {order.state}: merge into an open order")
    return order


def open_orders(session: Session, request: WorkRequest) -> list[WorkOrder]:
    """The open orders a request could be merged into (same asset, else same site)."""
    stmt = sa.select(WorkOrder).where(
        WorkOrder.site_id == request.site_id, WorkOrder.state.in_(MERGEABLE)
    )
    if request.asset_id is not None:
        stmt = stmt.where(WorkOrder.asset_id == request.asset_id)
    return list(session.scalars(stmt.order_by(WorkOrder.id.desc()).limit(50)))


def by_status_token(session: Session, token: str) -> WorkRequest:
    """The one request a status token opens (NotFoundError for any other token)."""
    request = session.scalar(
        sa.select(WorkRequest).where(WorkRequest.status_token_hash == hash_token(token))
    )
    if request is None:
        raise NotFoundError("no such request")
    return request


@dataclass
class Step:
    """One step of a request's progress for its requester."""

    name: Progress
    at: datetime | None
    done: bool


def progress(session: Session, request: WorkRequest) -> tuple[Progress, list[Step]]:
    """Where a request stands for its requester, and the steps so far.

    Only the request's own facts and its order's state and times: never the order's text,
    assignee or other requests merged into it.
    """
    received = Step("received", request.created_at, True)
    if request.status == "declined":
        return "declined", [received, Step("declined", request.triaged_at, True)]
    if request.status == "new" or request.work_order_id is None:
        later: list[Progress] = ["accepted", "in_progress", "done"]
        return "received", [received, *(Step(name, None, False) for name in later)]
    order = session.get(WorkOrder, request.work_order_id)
    accepted = Step("accepted", request.triaged_at, True)
    if order is None or order.state == "cancelled":
        return "cancelled", [
            received,
            accepted,
            Step("cancelled", order.updated_at if order else None, True),
        ]
    started = order.started_at or (order.completed_at if order.completed_at else None)
    working = Step("in_progress", started, started is not None)
    finished = order.state in ("completed", "verified")
    done = Step("done", order.completed_at if finished else None, finished)
    current: Progress = "done" if finished else "in_progress" if working.done else "accepted"
    return current, [received, accepted, working, done]
