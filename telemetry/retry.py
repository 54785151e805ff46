"""The one retry policy of every service: exponential backoff with full jitter, capped.

The collector's InfluxDB writer, analytics' alert outbox and status client, and the API's
webhook and notification outboxes all wait ``Backoff.delay(failures)`` before trying again:

- the n-th consecutive failure waits a random time in ``[first_s / 2, min(max_s, first_s ·
  2^(n-1))]`` ("full jitter", so that many clients that failed together do not retry together);
- a server's ``Retry-After`` is a floor, never shortened by the jitter;
- the exponent is capped, so a process that has failed for days does not overflow a float.

``log_retry`` says the same thing in the same words wherever it happens. Durable outboxes that
schedule the next attempt in a table (webhooks, notifications) take the delay as a timedelta
with ``Backoff.wait``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

_MAX_EXPONENT = 60


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after consecutive failures."""

    first_s: float
    max_s: float
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` consecutive failures (the doubling, capped)."""
        exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
        return min(self.max_s, self.first_s * 2.0**exponent)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt (``failures`` ≥ 1 so far)."""
        ceiling = self.ceiling(failures)
        low = min(self.first_s / 2, ceiling)
        wait = self.rng.uniform(low, ceiling) if self.jitter else ceiling
        return max(wait, retry_after or 0.0)

    def wait(self, failures: int, retry_after: float | None = None) -> timedelta:
        """``delay`` as a timedelta (for an attempt scheduled in a table)."""
        return timedelta(seconds=self.delay(failures, retry_after))


def log_retry(
    logger: logging.Logger, what: str, failures: int, delay_s: float, error: object
) -> None:
    """One line per failed attempt, the same everywhere: what, which attempt, when again, why."""
    logger.warning("%s failed (attempt %d, retry in %.1f s): %s", what, failures, delay_s, error)
