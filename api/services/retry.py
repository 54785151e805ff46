"""The one retry policy of the API's outboxes (webhooks, notifications): capped doubling."""

from __future__ import annotations

from datetime import timedelta

# A lease: a claimed outbox row is not picked up again (by this or another replica) meanwhile.
LEASE = timedelta(minutes=2)


def backoff(base_s: float, attempts: int, cap: timedelta = timedelta(hours=1)) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base ... up to cap."""
    # Capped in float seconds first: a large attempt count must not overflow timedelta.
    wait_s = min(base_s * 2.0 ** min(max(attempts - 1, 0), 64), cap.total_seconds())
    return timedelta(seconds=wait_s)
