"""The writer: drains the spool into InfluxDB in batches; rows go only after the server confirmed.

``parallel_requests`` lanes (threads) each claim the oldest rows no other lane holds, write them
and delete them, one request at a time, so that InfluxDB always has that many requests to work
on (as a pool of independent clients would give it). Waiting for a whole round of parallel
requests before the next, as an earlier version did, left InfluxDB idle between rounds:
measured, a gateway drain spent most of its time writing a spool backlog at ~0.3 of InfluxDB's
raw ingest rate. Rows are written in any order across lanes (points carry their timestamps).

Failures are sorted as telemetry's client classifies them: retryable (connection, timeout, 429,
5xx) → retry with exponential backoff and full jitter, never sooner than ``Retry-After``, and
sooner once a ``/ping`` probe finds the server answering again after it did not (so writes
resume within about a probe interval of InfluxDB's return, whatever the backoff reached);
rejected (4xx, partial write) → bisect the batch until the bad points are isolated, write the
rest, dead-letter only those points; fatal (401/403, unknown database) → log an error, turn
unhealthy, keep the spool and retry slowly.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from collector.metrics import Metrics
from collector.settings import WriterSettings
from collector.spool import DeadLetter, Spool, SpooledRow
from collector.supervisor import Supervisor
from telemetry.errors import (
    InfluxError,
    InfluxFatalError,
    InfluxRejectedError,
    InfluxRetryableError,
)
from telemetry.retry import Backoff, log_retry

log = logging.getLogger(__name__)


class LineSink(Protocol):
    """Where line protocol goes (``telemetry.influx.client.InfluxClient`` in production)."""

    def write_lines(self, body: bytes) -> None:
        """Write a line-protocol body; return only once the server confirmed."""


class Writer:
    """A thread draining the spool; ``healthy`` is False while a fatal error is unresolved."""

    def __init__(
        self,
        spool: Spool,
        sink: LineSink,
        settings: WriterSettings,
        metrics: Metrics,
        *,
        on_freed: Callable[[], None] = lambda: None,
        clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        probe: Callable[[], object] | None = None,
        supervisor: Supervisor | None = None,
        create_database: Callable[[], object] | None = None,
        database_hint: str = "create the database or bucket named in influx settings",
    ) -> None:
        self._spool = spool
        self._sink = sink
        self._probe = probe
        self._create_database = create_database
        self._database_hint = database_hint
        self._settings = settings
        self._metrics = metrics
        self._on_freed = on_freed
        self._clock_ns = clock_ns
        self._rng = rng or random.Random()
        # telemetry's one retry policy: full jitter spreads retries of many collectors, and
        # Retry-After is a floor, not a hint.
        self._backoff = Backoff(settings.retry_min_s, settings.retry_max_s, rng=self._rng)
        self._stop = threading.Event()
        self._supervisor = supervisor or Supervisor(metrics.thread_restarts)
        self._threads: list[threading.Thread] = []
        # Row ids some lane is writing: the others skip them.
        self._claimed: set[int] = set()
        self._claim_lock = threading.Lock()
        # The first request goes alone (it also sets up the client); then every lane writes.
        self._warm = threading.Event()
        self._failures = 0
        # Per lane: the Retry-After floor and whether the server gave no answer at all, set by
        # the lane's last failed attempt for its next wait.
        self._lane = threading.local()
        self.healthy = True
        self.last_error: str | None = None

    def start(self) -> None:
        """Start draining: one supervised thread per lane."""
        self._threads = [
            self._supervisor.spawn(
                f"influx-writer-{lane}", functools.partial(self._run, lane), self._stop
            )
            for lane in range(self._settings.parallel_requests)
        ]

    def stop(self) -> None:
        """Stop after the current requests (the spool keeps the rest)."""
        self._stop.set()
        deadline = time.monotonic() + max(30.0, self._settings.retry_max_s)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def drain(self, timeout_s: float) -> bool:
        """Write until the spool is empty or the time is up (used at shutdown, thread stopped)."""
        deadline = time.monotonic() + timeout_s
        while self._spool.rows and time.monotonic() < deadline:
            if not self.write_once():
                return False
        return not self._spool.rows

    def _run(self, lane: int) -> None:
        idle = self._settings.idle_poll_ms / 1000
        while not self._stop.is_set():
            if lane and not self._warm.is_set():
                self._warm.wait(idle)
                continue
            self._lane.floor, self._lane.unreachable = 0.0, False
            delay = self._attempt()
            if delay is None:  # nothing to write that another lane does not hold
                self._stop.wait(idle)
            elif delay:
                self._wait_retry(delay)

    def _wait_retry(self, delay: float) -> None:
        """Wait ``delay`` before a retry, or less once a /ping probe sees InfluxDB come back.

        The retry goes early only after a probe that failed (or a failure that was no answer
        at all): a server that answers /ping but refuses writes with 5xx keeps the backoff,
        so an overloaded InfluxDB is not retried every probe interval.
        """
        now = time.monotonic()
        deadline = now + delay
        floor = now + getattr(self._lane, "floor", 0.0)
        seen_down = bool(getattr(self._lane, "unreachable", False))
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if self._stop.wait(min(deadline - now, self._settings.probe_interval_s)):
                return
            if self._probe is None or time.monotonic() < floor:
                continue
            try:
                self._probe()
            except InfluxError:
                seen_down = True
                continue
            if seen_down:
                log.info("InfluxDB answers /ping again: retrying the write now")
                return

    def _claim(self) -> list[SpooledRow]:
        """The oldest batch no other lane holds, now held by the caller."""
        with self._claim_lock:
            rows = self._spool.read_batch(
                self._settings.batch_max_readings,
                self._settings.batch_max_bytes,
                exclude=frozenset(self._claimed),
            )
            self._claimed.update(row.id for row in rows)
        return rows

    def _release(self, rows: list[SpooledRow]) -> None:
        with self._claim_lock:
            self._claimed.difference_update(row.id for row in rows)

    def write_once(self) -> bool:
        """Write one batch; True when it left the spool (or nothing was left to write)."""
        return self._attempt() in (None, 0.0)

    def _attempt(self) -> float | None:
        """Claim and write one batch; the delay before the next attempt (0 after success),
        None when there was nothing to claim."""
        rows = self._claim()
        if not rows:
            return None
        try:
            return self._write_claimed(rows)
        finally:
            self._release(rows)
            self._warm.set()

    def _write_claimed(self, rows: list[SpooledRow]) -> float:
        """Write rows this lane holds; the delay before the next attempt (0 after success)."""
        try:
            written, dead = self._write_isolating(rows)
        except InfluxRetryableError as exc:
            self._metrics.write_errors.labels("retryable").inc()
            self._failures += 1
            delay = self._backoff.delay(self._failures, exc.retry_after)
            self._lane.floor = exc.retry_after or 0.0
            self._lane.unreachable = exc.status is None  # no answer at all (refused, timed out)
            self.last_error = str(exc)
            what = f"InfluxDB write ({self._spool.readings} readings spooled)"
            log_retry(log, what, self._failures, delay, exc)
            return delay
        except InfluxFatalError as exc:
            self._metrics.write_errors.labels("fatal").inc()
            if exc.status == 404 and self._create_missing_database():
                return 0.0
            self._metrics.healthy.set(0)
            self.healthy = False
            self.last_error = str(exc)
            if exc.status == 404:
                self.last_error += f"; create it: {self._database_hint}"
            log.error(
                "InfluxDB refuses our writes (%s): check influx settings; the spool keeps "
                "%d readings and the writer retries every %.0f s",
                exc,
                self._spool.readings,
                self._settings.fatal_retry_s,
            )
            return self._settings.fatal_retry_s
        if not self.healthy:
            log.info("InfluxDB accepts writes again")
        self._failures = 0
        self.healthy = True
        self.last_error = None
        self._metrics.healthy.set(1)
        self._spool.delete(rows, written=written, dead=dead)
        self._metrics.readings_written.inc(written)
        for letter in dead:
            self._metrics.rejected.labels(letter.reason).inc()
            self._metrics.dead_lettered.labels(letter.reason).inc()
        self._on_freed()
        return 0.0

    def _create_missing_database(self) -> bool:
        """Create the missing database when allowed (writer.create_database); True on success.

        A fresh InfluxDB 1.x without the database answered every write 404, and the collector
        only said so on /healthz (issue 15 item 10). CREATE DATABASE is idempotent; without
        admin rights (or on 2.x, whose buckets it cannot make) the error says what to run.
        """
        if self._create_database is None:
            return False
        try:
            self._create_database()
        except InfluxError as exc:
            log.error("the database is missing and creating it failed: %s", exc)
            return False
        log.warning("the InfluxDB database was missing: created it")
        return True

    def _post(self, lines: list[bytes]) -> None:
        self._post_body(b"\n".join(lines))

    def _post_body(self, body: bytes) -> None:
        started = time.perf_counter()
        self._sink.write_lines(body)
        self._metrics.write_latency.observe(time.perf_counter() - started)

    def _chunks(self, rows: list[SpooledRow]) -> list[list[SpooledRow]]:
        """Consecutive rows split into requests within the batch limits (one row at least)."""
        limit_readings = self._settings.batch_max_readings
        limit_bytes = self._settings.batch_max_bytes
        chunks: list[list[SpooledRow]] = []
        readings = size = 0
        for row in rows:
            if not chunks or (
                readings + row.readings > limit_readings or size + len(row.body) > limit_bytes
            ):
                chunks.append([])
                readings = size = 0
            chunks[-1].append(row)
            readings += row.readings
            size += len(row.body) + 1
        return chunks

    def _post_all(self, bodies: list[bytes]) -> None:
        """POST the bodies in turn (a lane's batch is one body unless rows were split)."""
        for body in bodies:
            self._post_body(body)

    def _write_isolating(self, rows: list[SpooledRow]) -> tuple[int, list[DeadLetter]]:
        """Write the rows; on rejection bisect by line. Returns (points written, dead letters)."""
        try:
            # Each row is ready line protocol: a request body is one join, no per-line work.
            self._post_all([b"\n".join([r.body for r in chunk]) for chunk in self._chunks(rows)])
            return sum(row.readings for row in rows), []
        except InfluxRejectedError as rejected:
            exc = rejected
        lines = [line for row in rows for line in row.body.split(b"\n")]
        log.warning("InfluxDB rejected a batch of %d points (%s): isolating", len(lines), exc)
        owners = [(row, topic) for row in rows for topic in row.topics()]
        bad: list[tuple[int, InfluxRejectedError]] = []
        if len(lines) == 1:
            bad.append((0, exc))
        else:  # the whole batch already failed: start with its halves
            mid = len(lines) // 2
            self._bisect(lines, 0, mid, bad)
            self._bisect(lines, mid, len(lines), bad)
        dead = [
            DeadLetter(
                owners[i][0].received_ns,
                "influx_rejected",
                error.server_reason or str(error),
                owners[i][1],
                lines[i],
                len(lines[i]),
            )
            for i, error in bad
        ]
        return len(lines) - len(bad), dead

    def _bisect(
        self, lines: list[bytes], lo: int, hi: int, bad: list[tuple[int, InfluxRejectedError]]
    ) -> None:
        try:
            self._post(lines[lo:hi])
        except InfluxRejectedError as exc:
            if hi - lo == 1:
                bad.append((lo, exc))
                return
            mid = (lo + hi) // 2
            self._bisect(lines, lo, mid, bad)
            self._bisect(lines, mid, hi, bad)
