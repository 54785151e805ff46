"""One pass of the notification worker, run in the API process like the other sweeps."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial

import httpx
from sqlalchemy.orm import Session, sessionmaker

from api.db import run_in_transaction
from api.metrics import Metrics
from api.models import utcnow
from api.services.notify import fanout, outbox
from api.services.notify.channels import CHANNELS, SendError, send_chat, send_email

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0  # retention is counted in days: once an hour is plenty


@dataclass
class Health:
    """The last outcome per channel: a failed channel is down until a send succeeds."""

    down: dict[str, str] = field(default_factory=dict)
    purged_at: float = 0.0  # monotonic time of the last retention purge
    overdue_at: float = 0.0  # ... and of the last scan for overdue work orders


def _fan_out(sessions: sessionmaker[Session], config: fanout.Config) -> None:
    # One transaction per event: a bad one is set aside and cannot hold up the queue.
    for event_id in run_in_transaction(sessions, fanout.pending_events):
        try:
            run_in_transaction(
                sessions,
                partial(fanout.process_event, config=config, event_id=event_id, now=utcnow()),
            )
        except Exception as exc:
            log.exception("notification event %s could not be fanned out; set aside", event_id)
            error = f"{type(exc).__name__}: {exc}"
            run_in_transaction(
                sessions, partial(fanout.fail_event, event_id=event_id, error=error, now=utcnow())
            )


def _escalate(sessions: sessionmaker[Session], config: fanout.Config) -> None:
    for escalation_id in run_in_transaction(
        sessions, lambda s: fanout.due_escalations(s, utcnow())
    ):
        try:
            run_in_transaction(
                sessions,
                partial(fanout.escalate, config=config, escalation_id=escalation_id, now=utcnow()),
            )
        except Exception:
            log.exception("escalation %s failed; set aside", escalation_id)
            run_in_transaction(
                sessions, partial(fanout.fail_escalation, escalation_id=escalation_id)
            )


def tick(
    sessions: sessionmaker[Session], config: fanout.Config, metrics: Metrics, health: Health
) -> int:
    """Fan out queued events, escalate, release floods, then send what is due; sends tried."""
    # Due dates are minutes apart at the finest: one scan per (rule) minute is enough.
    if time.monotonic() - health.overdue_at >= config.settings.minute_s:
        health.overdue_at = time.monotonic()
        run_in_transaction(sessions, lambda s: outbox.queue_overdue(s, utcnow()))
    _fan_out(sessions, config)
    _escalate(sessions, config)
    run_in_transaction(sessions, lambda s: outbox.release_floods(s, config.settings, utcnow()))
    jobs = run_in_transaction(sessions, lambda s: outbox.claim(s, utcnow()))
    settings = config.settings
    if jobs:
        timeout = httpx.Timeout(settings.chat_timeout_s)
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for job in jobs:
                error = None
                try:
                    if job.channel == "email":
                        send_email(settings, job)
                    else:
                        send_chat(client, settings, job)
                except SendError as exc:
                    error = str(exc)
                    log.warning("notification %s over %s: %s", job.id, job.channel, error)
                except Exception as exc:
                    # A bug in a sender counts as a failed attempt: the row must not stay
                    # leased and retried forever without ever reaching its attempt limit.
                    error = f"internal error: {type(exc).__name__}: {exc}"[:2000]
                    log.exception("notification %s over %s failed", job.id, job.channel)
                status = run_in_transaction(
                    sessions,
                    partial(outbox.record, settings=settings, item=job, error=error, now=utcnow()),
                )
                metrics.notifications.labels(job.channel, status).inc()
                if error is None:
                    health.down.pop(job.channel, None)
                else:
                    health.down[job.channel] = error
                metrics.channel_up.labels(job.channel).set(0 if error else 1)
    if time.monotonic() - health.purged_at > PURGE_EVERY_S:
        health.purged_at = time.monotonic()
        run_in_transaction(sessions, lambda s: outbox.purge(s, settings, utcnow()))
    dead = run_in_transaction(sessions, outbox.dead_by_channel)
    for channel in CHANNELS:
        metrics.notifications_dead.labels(channel).set(dead.get(channel, 0))
    return len(jobs)
