"""Login throttling: growing lockouts per user name and per client address (in process).

Each key (a user name, a client address) may fail a few times for free; every failure after
that locks the key for twice as long as the one before, up to a cap. A locked key is refused
before the password is checked, so the right password does not help during a lockout, and
names that exist and names that do not are throttled alike (nothing tells them apart).
Failures are forgotten once a key has been quiet for the window. The clock is injected, so
tests move time instead of waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Lockout:
    """A key that one more failure locked, and for how long."""

    key: str
    seconds: float
    failures: int


class LoginThrottle:
    """Failure counts and lockouts per key (`user:<name>`, `address:<ip>`)."""

    # Bounds memory under a flood of distinct names or addresses: the oldest are dropped.
    MAX_KEYS = 100_000

    def __init__(
        self,
        *,
        free_failures: dict[str, int],
        base_delay_s: float,
        max_delay_s: float,
        forget_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free_failures  # by key kind: "user", "address"
        self._base = base_delay_s
        self._max = max_delay_s
        self._forget = forget_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def _record(self, key: str, now: float) -> _Record:
        record = self._records.get(key)
        if record is None or (
            now - record.last_failure > self._forget and now >= record.locked_until
        ):
            if len(self._records) >= self.MAX_KEYS:
                del self._records[next(iter(self._records))]
            record = self._records[key] = _Record()
        return record

    def retry_after(self, keys: list[str]) -> float:
        """Seconds until every key is unlocked (0.0: none is locked)."""
        with self._lock:
            now = self._clock()
            waits = [self._record(key, now).locked_until - now for key in keys]
            return max(0.0, *waits)

    def failed(self, keys: list[str]) -> list[Lockout]:
        """Count a failure against each key; the lockouts it started."""
        started = []
        with self._lock:
            now = self._clock()
            for key in keys:
                record = self._record(key, now)
                record.failures += 1
                record.last_failure = now
                over = record.failures - self._free[key.partition(":")[0]]
                if over > 0:
                    seconds = min(self._max, self._base * 2 ** min(over - 1, 32))
                    record.locked_until = now + seconds
                    started.append(Lockout(key, seconds, record.failures))
        return started

    def succeeded(self, key: str) -> None:
        """Forget a key's failures (a user who got in); addresses keep theirs."""
        with self._lock:
            self._records.pop(key, None)
