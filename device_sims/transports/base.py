"""The transport interface and the bounded outbox that gateways buffer in."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Protocol, TypeVar

from device_sims.engine import Sample

T = TypeVar("T")


class Transport(Protocol):
    """Something that takes readings and puts them on a wire."""

    def start(self) -> None:
        """Open connections, ports and threads."""

    def send(self, sample: Sample) -> None:
        """Hand over one reading (may batch or buffer it)."""

    def tick(self, now_ns: int) -> None:
        """Simulated time moved on: close batches that are old enough."""

    def flush(self, timeout_s: float) -> bool:
        """Push out anything batched; True when everything was delivered within timeout_s."""

    def close(self) -> None:
        """Stop threads and release ports."""

    def stats(self) -> dict[str, int]:
        """Counters: sent, delivered, dropped, retried..."""


class Outbox(Generic[T]):
    """A bounded FIFO between the simulation and a sender thread.

    ``block=True`` (backfill) makes producers wait for room, so nothing is lost and memory
    stays bounded; ``block=False`` (live modes) behaves like a gateway with a ring buffer:
    when full, the oldest entry is dropped and counted.
    """

    def __init__(self, capacity: int, *, block: bool) -> None:
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        self.capacity = capacity
        self.block = block
        self.dropped = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T) -> None:
        """Append; wait for room or drop the oldest, according to the policy."""
        with self._cond:
            while self.block and len(self._items) >= self.capacity and not self._closed:
                self._cond.wait(0.5)
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def peek(self, timeout_s: float) -> T | None:
        """The oldest entry without removing it (None after timeout_s or when closed)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout_s)
            return self._items[0] if self._items else None

    def done(self, item: T) -> None:
        """Remove ``item`` after delivery or final rejection, unless it was dropped meanwhile."""
        with self._cond:
            if self._items and self._items[0] is item:
                self._items.popleft()
            self._cond.notify_all()

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until everything was taken out; True if empty."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items, timeout_s)

    def close(self) -> None:
        """Release waiting producers and consumers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
