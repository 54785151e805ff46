"""Outbound webhooks: events enqueue delivery rows in the caller's transaction; a background
worker POSTs them signed (HMAC-SHA256), retrying with exponential backoff until the bound."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from api.db import run_in_transaction
from api.models import Alert, Webhook, WebhookDelivery, WorkOrder, utcnow
from api.schemas.alerts import AlertPublic
from api.services.outbox import lease_due, settle
from api.settings import ServerSettings
from telemetry.retry import Backoff

log = logging.getLogger(__name__)

WEBHOOK_BACKOFF_MAX_S = 3600.0  # the longest wait between two attempts of one delivery

# An alert history event → the webhook event it is (anything else is an update).
ALERT_EVENTS = {"activated": "alert.opened", "returned_to_normal": "alert.cleared"}
WORK_ORDER_FIELDS = (
    "id",
    "site_id",
    "asset_id",
    "alert_id",
    "title",
    "work_type",
    "failure_mode",
    "state",
    "priority",
    "assignee_id",
    "due_at",
    "resolution",
    "updated_at",
)


def sign(secret: str, body: bytes) -> str:
    """The X-Equipmon-Signature value of body: `sha256=<hex HMAC-SHA256 with the secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def emit(session: Session, event: str, data: dict[str, Any], now: datetime | None = None) -> None:
    """Queue event for every active webhook subscribed to it (commits with the change)."""
    hooks = session.scalars(sa.select(Webhook).where(Webhook.active.is_(True))).all()
    targets = [hook for hook in hooks if event in hook.events]
    if not targets:
        return
    at = now or utcnow()
    event_id = uuid.uuid4().hex
    for hook in targets:
        session.add(
            WebhookDelivery(
                webhook_id=hook.id,
                event=event,
                event_id=event_id,
                occurred_at=at,
                payload=data,
                status="pending",
                attempts=0,
                next_attempt_at=at,
                created_at=at,
            )
        )


def alert_event(session: Session, alert: Alert, history_event: str, at: datetime) -> None:
    """Queue the webhook event of an alert history entry."""
    event = ALERT_EVENTS.get(history_event, "alert.updated")
    data = AlertPublic.model_validate(alert).model_dump(mode="json")
    emit(session, event, {**data, "history_event": history_event}, at)


def work_order_event(session: Session, order: WorkOrder, action: str) -> None:
    """Queue work_order.created (action 'create') or work_order.updated."""
    event = "work_order.created" if action == "create" else "work_order.updated"
    data = {name: getattr(order, name) for name in WORK_ORDER_FIELDS}
    data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
    emit(session, event, {**data, "action": action})


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    event: str
    url: str
    secret: str
    body: bytes


def _claim(session: Session, now: datetime) -> list[_Job]:
    query = sa.select(WebhookDelivery, Webhook).join(
        Webhook, Webhook.id == WebhookDelivery.webhook_id
    )
    jobs = []
    for delivery, hook in lease_due(session, query, WebhookDelivery, now):
        body = {
            "event": delivery.event,
            "id": delivery.event_id,
            "occurred_at": delivery.occurred_at.isoformat(),
            "data": delivery.payload,
        }
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        jobs.append(_Job(delivery.id, delivery.event, hook.url, hook.secret, raw))
    return jobs


def _post(client: httpx.Client, job: _Job) -> tuple[int | None, str | None]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "equipmon-webhooks/1",
        "X-Equipmon-Event": job.event,
        "X-Equipmon-Delivery": str(job.delivery_id),
        "X-Equipmon-Signature": sign(job.secret, job.body),
    }
    try:
        response = client.post(job.url, content=job.body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _record(
    session: Session, job: _Job, outcome: tuple[int | None, str | None], config: ServerSettings
) -> None:
    delivery = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if delivery is None:  # the webhook was deleted meanwhile
        return
    delivery.last_status_code = outcome[0]
    settle(
        delivery,
        outcome[1],
        max_attempts=config.webhook_max_attempts,
        policy=Backoff(config.webhook_backoff_s, WEBHOOK_BACKOFF_MAX_S),
        given_up="failed",
        now=utcnow(),
    )


def deliver_due(sessions: sessionmaker[Session], config: ServerSettings) -> int:
    """POST the due deliveries once each and record the outcomes; how many were tried.

    Claiming is its own short transaction (a lease), so no row lock is held during the POST.
    """
    jobs = run_in_transaction(sessions, lambda s: _claim(s, utcnow()))
    if not jobs:
        return 0
    timeout = httpx.Timeout(config.webhook_timeout_s)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for job in jobs:
            outcome = _post(client, job)
            if outcome[1] is not None:
                log.warning("webhook delivery %s to %s: %s", job.delivery_id, job.url, outcome[1])
            run_in_transaction(sessions, partial(_record, job=job, outcome=outcome, config=config))
    return len(jobs)
