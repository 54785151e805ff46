"""The claim-and-lease loop of the API's durable outboxes (webhook deliveries, notifications).

Both tables have ``status``, ``attempts``, ``next_attempt_at`` and ``last_error``; a sender
leases a batch of due ``pending`` rows in one short transaction (``SKIP LOCKED``, so replicas
take different rows and no row lock is held while sending), sends, then settles each attempt in
its own transaction. The retry policy is every service's (telemetry.retry.Backoff: doubling
with full jitter, capped); what is the API's own is the lease: a claimed row is not picked up
again, by this or another replica, for ``LEASE``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from telemetry.retry import Backoff

LEASE = timedelta(minutes=2)
BATCH = 50  # rows leased at once; what is not sent within the lease is leased again

Columns = TypeVarTuple("Columns")


class OutboxRow(Protocol):
    """What an outbox table's row has."""

    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


def lease_due(
    session: Session,
    query: sa.Select[*Columns],
    table: Any,
    now: datetime,
) -> list[sa.Row[*Columns]]:
    """The due rows of ``query`` (its first entity is the outbox ``table``), leased."""
    next_attempt_at: InstrumentedAttribute[datetime] = table.next_attempt_at
    rows = session.execute(
        query.where(table.status == "pending", next_attempt_at <= now)
        .order_by(next_attempt_at, table.id)
        .limit(BATCH)
        .with_for_update(of=table, skip_locked=True)
    ).all()
    for row in rows:
        leased: OutboxRow = row._mapping[table]
        leased.next_attempt_at = now + LEASE
    return list(rows)


def settle(
    row: OutboxRow,
    error: str | None,
    *,
    max_attempts: int,
    policy: Backoff,
    given_up: str,
    now: datetime,
) -> str:
    """Record one attempt: delivered, due again after the policy's wait, or ``given_up`` after
    ``max_attempts``; the row's new status."""
    row.attempts += 1
    row.last_error = error
    if error is None:
        row.status, row.delivered_at = "delivered", now
    elif row.attempts >= max_attempts:
        row.status = given_up
    else:
        row.next_attempt_at = now + policy.wait(row.attempts)
    return row.status
