"""Per-client token-bucket rate limiting (in process: each API replica limits on its own)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket per key: `rate` tokens/s refill, at most `burst` held."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens for key: 0.0 if granted, else the seconds until they would be.

        A cost above the burst is granted from a full bucket and leaves it in debt, so one
        large request passes and the ones after it wait until the debt is paid.
        """
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            needed = min(cost, self._burst)
            if tokens >= needed:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (needed - tokens) / self._rate
