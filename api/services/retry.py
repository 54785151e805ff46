"""The one retry policy of the API's outboxes (webhooks, notifications): capped doubling."""

from __future__ import annotations

from datetime import timedelta

# A lease: a claimed outbox row is not picked up again (by this or another replica) meanwhile.
LEASE = timedelta(minutes=2)


def backoff(base_s: float, attempts: int, cap: timedelta = timedelta(hours=1)) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base ... up to cap."""
    wait = timedelta(seconds=base_s) * 2 ** max(attempts - 1, 0)
    return min(wait, cap)
