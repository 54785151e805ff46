"""Group commit: gather decoded messages, make them durable in one transaction, then ack them.

Acknowledging one message per fsync would cap a collector at a few hundred messages per
second; committing every ``interval`` or every ``max_messages`` messages amortises the fsync.
The broker's in-flight window must exceed ``max_messages`` or the group never fills and every
commit waits for the interval (see docs/collector.md, "In-flight window and commit sizing").
When the spool reaches its effective limit, or its disk is full, the committer stops
committing, so nothing is acknowledged and the broker keeps the backlog (backpressure), until
the writer has drained the spool below its low mark (``collector.capacity``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from collector.capacity import SpoolCapacity
from collector.errors import SpoolError, SpoolFullError
from collector.metrics import Metrics
from collector.spool import DeadLetter, Spool, SpoolEntry
from collector.supervisor import Supervisor

log = logging.getLogger(__name__)


class DeadLetterLog:
    """Logs dead letters at most once per reason per interval, with the count suppressed."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def record(self, letter: DeadLetter) -> None:
        """Log this dead letter unless its reason was logged within the interval."""
        now = self._clock()
        last = self._last.get(letter.reason)
        if last is not None and now - last < self._interval:
            self._suppressed[letter.reason] = self._suppressed.get(letter.reason, 0) + 1
            return
        self._last[letter.reason] = now
        log.warning(
            "dead letter (%s) on %s: %s [%d similar suppressed]",
            letter.reason,
            letter.topic,
            letter.detail[:300],
            self._suppressed.pop(letter.reason, 0),
        )


class GroupCommitter:
    """A thread that commits pending messages in groups and acknowledges each group."""

    def __init__(
        self,
        spool: Spool,
        metrics: Metrics,
        *,
        interval_s: float,
        max_messages: int,
        capacity: SpoolCapacity,
        max_pending: int,
        dead_letter_log: DeadLetterLog,
        supervisor: Supervisor | None = None,
    ) -> None:
        self._spool = spool
        self._metrics = metrics
        self._interval = interval_s
        self._max_messages = max_messages
        self._capacity = capacity
        self._max_pending = max(1, max_pending)
        self._dead_log = dead_letter_log
        self._cond = threading.Condition()
        # Decoded messages waiting for their commit, what their source needs to ack each, and
        # which source's they are: runs of [feed, count] in order (one per burst at most, and
        # consecutive runs of one feed merged, so MQTT alone keeps one run per group).
        self._items: list[SpoolEntry | DeadLetter] = []
        self._tokens: list[object] = []
        self._runs: list[list[Any]] = []
        self._stopping = False
        self._stop_event = threading.Event()  # the supervisor's view of _stopping
        self._supervisor = supervisor or Supervisor(metrics.thread_restarts)
        self._thread: threading.Thread | None = None
        self._space = threading.Condition()
        self.failed: str | None = None

    def start(self) -> None:
        """Start committing (a supervised thread: restarted if it dies)."""
        self._thread = self._supervisor.spawn("spool-committer", self._run, self._stop_event)

    def submit(
        self,
        items: Sequence[SpoolEntry | DeadLetter],
        tokens: Sequence[object],
        feed: CommitListener,
    ) -> None:
        """Queue a source's decoded messages and their ack tokens for the next group.

        ``feed`` is told once they are committed (``committed``), and acknowledges them.

        A whole read burst comes in one call: one lock round trip per burst, not per message.
        Blocks while adding the burst would exceed ``max_pending`` waiting messages (unless
        none waits): that stops the network thread reading, so
        TCP flow control holds the broker back even when it overruns our Receive Maximum
        (Mosquitto 2.0.11 does, see docs/collector.md). A block longer than 1.5 keep-alive
        intervals makes the broker drop the connection; unacknowledged messages are then
        redelivered after the reconnect, so nothing is lost.
        """
        with self._cond:
            while (
                self._items
                and len(self._items) + len(items) > self._max_pending
                and not self._stopping
                and not feed.closed
            ):
                self._cond.notify_all()
                self._cond.wait(0.5)
            self._items.extend(items)
            self._tokens.extend(tokens)
            if self._runs and self._runs[-1][0] is feed:
                self._runs[-1][1] += len(items)
            else:
                self._runs.append([feed, len(items)])
            if len(self._items) >= self._max_messages:
                self._cond.notify_all()

    def space_freed(self) -> None:
        """The writer deleted rows: a held group may now fit."""
        with self._space:
            self._space.notify_all()

    def waiting(self) -> int:
        """Messages received but not yet committed."""
        with self._cond:
            return len(self._items)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Commit what is pending (if the spool has room), then stop the thread."""
        with self._cond:
            self._stopping = True
            self._stop_event.set()
            self._cond.notify_all()
        self.space_freed()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def alive(self) -> bool:
        """Whether the committer's thread runs (dead ones are restarted by the supervisor)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._items and not self._stopping:
                    self._cond.wait(self._interval)
                if not self._items:
                    if self._stopping:
                        return
                    continue
                if len(self._items) < self._max_messages and not self._stopping:
                    # Let the group fill up to the interval (a second, short wait).
                    self._cond.wait(self._interval)
                # At most one group's worth: what piled up while the last group committed (a
                # slow disk, a loaded machine) waits for the next group, so the spool's limit is
                # overshot by one commit group at most, as documented.
                n = self._max_messages
                items, tokens = self._items[:n], self._tokens[:n]
                self._items, self._tokens = self._items[n:], self._tokens[n:]
                runs = self._take_runs(len(items))
                self._cond.notify_all()  # wake a network thread blocked in submit()
            committed = None
            try:
                # MQTT deliveries only: they date the dead-letter keys (``REDELIVERY_HORIZON``).
                acked = sum(count for feed, count in runs if feed.acknowledges)
                committed = self._commit(items, acked) if self._wait_for_space() else None
            finally:
                if committed is None:
                    # Stopping while full, or an unexpected error before the commit (the
                    # supervisor restarts us): keep them for the next try, unacknowledged.
                    with self._cond:
                        self._items = items + self._items
                        self._tokens = tokens + self._tokens
                        self._runs = runs + self._runs
            if committed is None:
                return
            self._acknowledge(*committed, items, tokens, runs)

    def _take_runs(self, n: int) -> list[list[Any]]:
        """The runs of the first ``n`` waiting messages, removed from the queue (under the lock)."""
        taken: list[list[Any]] = []
        while n > 0:
            feed, count = self._runs[0]
            if count <= n:
                taken.append(self._runs.pop(0))
            else:
                taken.append([feed, n])
                self._runs[0][1] = count - n
                count = n
            n -= count
        return taken

    def _wait_for_space(self) -> bool:
        """Wait while the spool holds back (the writer's deletes wake us); False when stopping."""
        if not self._capacity.should_hold():
            return True
        self._metrics.backpressure.set(1)
        with self._space:
            while self._capacity.should_hold():
                if self._stopping:
                    return False
                self._space.wait(0.5)
        self._metrics.backpressure.set(0)
        return True

    def _commit(
        self, items: list[SpoolEntry | DeadLetter], messages: int
    ) -> tuple[list[SpoolEntry], list[DeadLetter], int] | None:
        """Commit a group: its entries, the dead letters stored and how many bad messages were
        redeliveries of stored ones (not stored again); None when stopping first."""
        entries: list[SpoolEntry] = []
        dead: list[DeadLetter] = []
        for item in items:
            (entries if type(item) is SpoolEntry else dead).append(item)  # type: ignore[arg-type]
        while True:
            try:
                stored = self._spool.append(entries, dead, messages=messages)
                break
            except SpoolFullError:
                # The disk filled before the limit did (another process, or the estimate was
                # short): backpressure like the limit, not an error; retried below the low mark.
                self._capacity.disk_full()
                if not self._wait_for_space():
                    return None
            except SpoolError as exc:
                # An I/O error: nothing is acknowledged; keep trying (never drop).
                self.failed = str(exc)
                log.error("cannot commit to the spool (will retry): %s", exc)
                if self._stopping:
                    return None
                time.sleep(1.0)
        self.failed = None
        self._capacity.grew(sum(len(e.body) for e in entries))
        return entries, stored, len(dead) - len(stored)

    def _acknowledge(  # noqa: PLR0917 (the committed group's parts, from _commit and _run)
        self,
        entries: list[SpoolEntry],
        dead: list[DeadLetter],
        redelivered: int,
        items: list[SpoolEntry | DeadLetter],
        tokens: list[object],
        runs: list[list[Any]],
    ) -> None:
        """Count a committed group and have each source acknowledge its messages."""
        self._metrics.commits.inc()
        readings = sum(e.readings for e in entries)
        self._metrics.readings_spooled.inc(readings)
        if redelivered:
            self._metrics.dead_letters_redelivered.inc(redelivered)
        for letter in dead:
            self._metrics.dead_lettered.labels(letter.reason).inc()
            if letter.reason == "unknown_topic":
                self._metrics.unknown_topic.inc()
            self._dead_log.record(letter)
        acked = 0
        if len(runs) == 1:  # the usual group: one source's
            acked = runs[0][0].committed(tokens, readings, dead)
        else:
            stored = {id(letter) for letter in dead}
            start = 0
            for feed, count in runs:
                part = items[start : start + count]
                acked += feed.committed(
                    tokens[start : start + count],
                    sum(i.readings for i in part if type(i) is SpoolEntry),
                    [i for i in part if type(i) is DeadLetter and id(i) in stored],
                )
                start += count
        self._metrics.acknowledged.inc(acked)


class CommitListener(Protocol):
    """The committer's view of a source's feed (``collector.sources.feed.Feed``)."""

    @property
    def closed(self) -> bool:
        """True once the source stops: ``submit`` no longer waits for room."""
        ...

    @property
    def acknowledges(self) -> bool:
        """Whether its messages are acknowledged deliveries (MQTT): those are counted in the
        spool's ``mqtt_messages`` total, which dates redelivery keys."""
        ...

    def committed(self, tokens: Sequence[object], readings: int, dead: list[DeadLetter]) -> int:
        """These messages are durable: count them, acknowledge them; returns how many were
        acknowledged to their sender."""
        ...
