"""Rendered live fragments that are the same for every viewer, kept briefly per process."""

from __future__ import annotations

import threading


class FragmentCache:
    """Live fragments that are the same for every viewer (the fleet), rendered once per
    content, language and time zone, per process.

    The fragment's tag moves each minute (time-based styling) and with every write to a
    table the pages show, and then each open dashboard asked for a new render: 50 dashboards
    on a 1,000-asset fleet rendered 50 times a minute, ~0.3 s each on a quiet machine, 25 %
    of a core for one unchanged picture. The key is the content's (change counters, page,
    query, minute) without the viewer, so the others get the first one's bytes. Few entries:
    one fleet fragment of 1,000 assets is ~700 kB, and an entry is useless after a minute.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._bodies: dict[tuple[str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> bytes | None:
        """The body rendered under key, if remembered."""
        return self._bodies.get(key)

    def put(self, key: tuple[str, str, str], body: bytes) -> None:
        """Remember a body (the oldest entry goes when full)."""
        with self._lock:
            if len(self._bodies) >= self.size:
                self._bodies.pop(next(iter(self._bodies)))
            self._bodies[key] = body
