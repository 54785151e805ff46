"""A source's handle on the common intake: group committer → spool (readings) or dead letters.

Every source gets one ``Feed`` named after it, and nothing else writes to the spool. Two ways in:

* ``submit(items, tokens)``: spool entries and dead letters the source decoded itself, with
  what it needs to acknowledge each (MQTT: packet ids); the committer calls the feed's ``ack``
  with a group's tokens once the group is committed.
* ``put(readings)`` / ``reject(reason, detail, payload)``, then ``flush()``: for sources that
  decode into readings and cannot acknowledge (a serial line). ``flush`` hands the frames over
  and returns once they are committed, so the reader takes nothing more from its device until
  what it took is durable: while the spool is full it blocks, and bytes wait in the OS and
  device buffers (a serial device cannot be told to wait).

The feed counts what its source handed over (plain integers, one writer each; read when
``/metrics`` is scraped): messages or frames taken, readings committed, dead letters by reason,
and when input last came.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from collector.committer import GroupCommitter
from collector.spool import DeadLetter, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.reading import Reading

AckFn = Callable[[Sequence[object]], int]
"""Acknowledge a committed group's tokens to the sender; returns how many were acknowledged."""


class Feed:
    """One source's way into the intake, counted under its name."""

    def __init__(
        self,
        name: str,
        kind: str,
        committer: GroupCommitter,
        *,
        ack: AckFn | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self.kind = kind
        self._committer = committer
        self._ack = ack
        self.acknowledges = ack is not None  # its messages are deliveries a sender may repeat
        self._clock_ns = clock_ns
        self._formatter = LineFormatter()
        self._pending: list[SpoolEntry | DeadLetter] = []
        self._cond = threading.Condition()
        self._submitted = 0  # put/reject items handed over, and how many of them are committed
        self._committed = 0
        self.closed = False
        self.messages = 0  # messages or frames taken (good and bad)
        self.readings = 0  # readings committed to the spool
        self.dead_letters: Counter[str] = Counter()  # dead letters stored, by reason
        self.last_input: float | None = None  # time.monotonic() of the last input taken

    # -- a source that decodes and acknowledges itself -----------------------------------------

    def submit(self, items: Sequence[SpoolEntry | DeadLetter], tokens: Sequence[object]) -> None:
        """Queue decoded messages and their ack tokens for the next group commit.

        Blocks while the committer holds its window of waiting messages (backpressure; it
        returns at once when the feed or the committer is stopping)."""
        self.messages += len(items)
        self.last_input = time.monotonic()
        self._committer.submit(items, tokens, self)

    # -- a source whose input cannot wait ------------------------------------------------------

    def put(self, readings: list[Reading]) -> None:
        """One frame's readings (handed over at the next ``flush``)."""
        body = self._formatter.lines(readings)
        self._pending.append(SpoolEntry(self.name, body, len(readings), self._clock_ns()))

    def reject(self, reason: str, detail: str, payload: bytes) -> None:
        """One bad frame: a dead letter named after this source (handed over at ``flush``)."""
        letter = DeadLetter(self._clock_ns(), reason, detail, self.name, payload, len(payload))
        self._pending.append(letter)

    def flush(self) -> None:
        """Hand over what was put and rejected; return once it is committed (or when closed)."""
        items, self._pending = self._pending, []
        if not items:
            return
        with self._cond:
            self._submitted += len(items)
            target = self._submitted
        self.submit(items, [None] * len(items))
        with self._cond:
            while self._committed < target and not self.closed:
                self._cond.wait(0.5)

    def close(self) -> None:
        """Stop waiting: a ``flush`` in progress returns (what it handed over may yet commit)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # -- the committer's side ------------------------------------------------------------------

    def committed(self, tokens: Sequence[object], readings: int, dead: list[DeadLetter]) -> int:
        """A group holding these of our messages is durable (committer thread): count them,
        acknowledge them; returns how many were acknowledged to the sender."""
        self.readings += readings
        for letter in dead:
            self.dead_letters[letter.reason] += 1
        if self._ack is not None:
            return self._ack(tokens)
        with self._cond:
            self._committed += len(tokens)
            self._cond.notify_all()
        return 0

    def last_input_age_s(self) -> float | None:
        """Seconds since input last came (None: none yet)."""
        last = self.last_input
        return None if last is None else max(0.0, time.monotonic() - last)
