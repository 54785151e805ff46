"""Receipt timestamps that follow the wall clock but never jump: a slewed monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable

# Like NTP's slew: follow wall-clock corrections at 1 ms per second, so an NTP step neither
# reorders readings nor creates a burst of identical timestamps.
_SLEW_PER_S = 0.001


class ReceiptClock:
    """Wall time in ns, derived from the monotonic clock and slewed toward the wall clock."""

    def __init__(
        self,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._wall, self._mono = wall_ns, monotonic_ns
        self._anchor_mono = monotonic_ns()
        self._anchor_wall = wall_ns()
        self._last = 0

    def now_ns(self) -> int:
        """The current time; strictly increasing across calls."""
        mono = self._mono()
        elapsed = mono - self._anchor_mono
        estimate = self._anchor_wall + elapsed
        error = self._wall() - estimate
        limit = int(elapsed * _SLEW_PER_S)
        correction = max(-limit, min(limit, error))
        self._anchor_wall, self._anchor_mono = estimate + correction, mono
        self._last = max(self._last + 1, self._anchor_wall)
        return self._last
