"""Webhooks: admins subscribe URLs to alert and work-order events and inspect deliveries."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from api.crud import get_or_404
from api.deps import Admin, SessionDep
from api.models import Webhook, WebhookDelivery, utcnow
from api.pagination import Limit, Offset, PathId, paginate
from api.schemas.common import Page
from api.schemas.webhooks import DeliveryPublic, DeliveryStatus, WebhookCreate, WebhookPublic
from api.services import audit

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to events")
def create_webhook(body: WebhookCreate, session: SessionDep, principal: Admin) -> WebhookPublic:
    """Events are POSTed as JSON `{"event", "id", "occurred_at", "data"}`, signed in
    `X-Equipmon-Signature: sha256=<HMAC-SHA256 of the body with the secret>`.

    The secret is stored as given (signing needs it) and never returned.
    """
    hook = Webhook(
        url=str(body.url),
        events=sorted(set(body.events)),
        secret=body.secret,
        active=body.active,
        created_by=principal.actor,
        created_at=utcnow(),
    )
    session.add(hook)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "create",
        "webhook",
        hook.id,
        {"url": hook.url, "events": hook.events, "active": hook.active},
    )
    session.commit()
    return WebhookPublic.model_validate(hook)


@router.get("/webhooks", summary="List webhooks")
def list_webhooks(
    session: SessionDep, _: Admin, *, limit: Limit = 50, offset: Offset = 0
) -> Page[WebhookPublic]:
    """Subscriptions (never their secrets)."""
    return paginate(session, sa.select(Webhook).order_by(Webhook.id), WebhookPublic, limit, offset)


@router.get("/webhooks/{webhook_id}", summary="Get a webhook")
def get_webhook(webhook_id: PathId, session: SessionDep, _: Admin) -> WebhookPublic:
    """One subscription (without its secret)."""
    return WebhookPublic.model_validate(get_or_404(session, Webhook, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
def delete_webhook(webhook_id: PathId, session: SessionDep, principal: Admin) -> Response:
    """Unsubscribe; its pending deliveries are dropped with it."""
    hook = get_or_404(session, Webhook, webhook_id, lock=True)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.delete(hook)
    audit.record(session, principal.actor, "delete", "webhook", webhook_id, {"url": hook.url})
    session.commit()
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", summary="A webhook's deliveries")
def list_deliveries(
    webhook_id: PathId,
    session: SessionDep,
    _: Admin,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Page[DeliveryPublic]:
    """Deliveries, newest first: status (pending, delivered, failed), attempts, last outcome."""
    get_or_404(session, Webhook, webhook_id)
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(session, stmt, DeliveryPublic, limit, offset)
