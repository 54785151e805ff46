"""Where a work-order change is announced: webhooks and notifications hear of it together."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.models import WorkOrder
from api.services import notify, webhooks


def work_order_event(session: Session, order: WorkOrder, action: str) -> None:
    """Queue the webhook event and the notifications of a work-order change (same transaction)."""
    webhooks.work_order_event(session, order, action)
    notify.work_order_event(session, order, action)
