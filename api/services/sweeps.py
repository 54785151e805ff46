"""Periodic work: shelving that ran out, post-repair verification, preventive orders due."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from api.db import run_in_transaction
from api.services import alerts, pm, work_orders
from api.settings import PolicySettings

log = logging.getLogger(__name__)


def sweep(
    sessions: sessionmaker[Session], policy: PolicySettings, now: datetime
) -> tuple[list[int], list[int]]:
    """Unshelve expired alerts and verify quiet repairs; (unshelved alert ids, verified orders)."""
    unshelved = run_in_transaction(sessions, lambda s: alerts.expire_shelving(s, policy, now))
    verified = run_in_transaction(sessions, lambda s: work_orders.verify_due(s, now))
    planned = run_in_transaction(sessions, lambda s: pm.generate_due(s, policy, now))
    if unshelved or verified or planned:
        log.info(
            "sweep: unshelved alerts %s, verified work orders %s, preventive orders made %s",
            unshelved,
            verified,
            planned,
        )
    return unshelved, verified
