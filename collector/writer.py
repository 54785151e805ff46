"""The writer: drains the spool into InfluxDB in batches; rows go only after the server confirmed.

Failures are sorted as telemetry's client classifies them: retryable (connection, timeout, 429,
5xx) → retry with exponential backoff and full jitter, never sooner than ``Retry-After``;
rejected (4xx, partial write) → bisect the batch until the bad points are isolated, write the
rest, dead-letter only those points; fatal (401/403, unknown database) → log an error, turn
unhealthy, keep the spool and retry slowly.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from collector.metrics import Metrics
from collector.settings import WriterSettings
from collector.spool import DeadLetter, Spool, SpooledRow
from telemetry.errors import (
    InfluxError,
    InfluxFatalError,
    InfluxRejectedError,
    InfluxRetryableError,
)

log = logging.getLogger(__name__)


def _severity(error: BaseException) -> int:
    """Which failure of parallel requests decides: the lowest number."""
    if isinstance(error, InfluxFatalError):
        return 0
    if isinstance(error, InfluxRejectedError):
        return 2
    return 1  # retryable, or a bug: retry the whole batch later


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
    ) -> None:
        self._spool = spool
        self._sink = sink
        self._settings = settings
        self._metrics = metrics
        self._on_freed = on_freed
        self._clock_ns = clock_ns
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._failures = 0
        self.healthy = True
        self.last_error: str | None = None
        # Requests beyond the first go through a small pool while this thread posts the first.
        self._pool = (
            ThreadPoolExecutor(settings.parallel_requests - 1, thread_name_prefix="influx-post")
            if settings.parallel_requests > 1
            else None
        )
        self._warm = False

    def start(self) -> None:
        """Start draining."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current request (the spool keeps the rest)."""
        self._stop.set()
        self._thread.join(max(30.0, self._settings.retry_max_s))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def drain(self, timeout_s: float) -> bool:
        """Write until the spool is empty or the time is up (used at shutdown, thread stopped)."""
        deadline = time.monotonic() + timeout_s
        while self._spool.rows and time.monotonic() < deadline:
            if not self.write_once():
                return False
        return not self._spool.rows

    def _run(self) -> None:
        idle = self._settings.idle_poll_ms / 1000
        while not self._stop.is_set():
            if not self._spool.rows:
                self._stop.wait(idle)
                continue
            delay = self._attempt()
            if delay:
                self._stop.wait(delay)

    def write_once(self) -> bool:
        """Write one batch; True when it left the spool."""
        return self._attempt() == 0.0

    def _attempt(self) -> float:
        """Write one batch; return the delay before the next attempt (0 after success)."""
        parallel = self._settings.parallel_requests
        rows = self._spool.read_batch(
            self._settings.batch_max_readings * parallel, self._settings.batch_max_bytes * parallel
        )
        if not rows:
            return 0.0
        try:
            written, dead = self._write_isolating(rows)
        except InfluxRetryableError as exc:
            self._metrics.write_errors.labels("retryable").inc()
            self._failures += 1
            delay = self._backoff(exc.retry_after)
            self.last_error = str(exc)
            log.warning(
                "InfluxDB write failed (attempt %d, retry in %.1f s, %d readings spooled): %s",
                self._failures,
                delay,
                self._spool.readings,
                exc,
            )
            return delay
        except InfluxFatalError as exc:
            self._metrics.write_errors.labels("fatal").inc()
            self._metrics.healthy.set(0)
            self.healthy = False
            self.last_error = str(exc)
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

    def _backoff(self, retry_after: float | None) -> float:
        # Full jitter spreads retries of many collectors; Retry-After is a floor, not a hint.
        # The exponent is capped: after ~1,000 failures 2**n no longer fits a float.
        cap = min(
            self._settings.retry_max_s,
            self._settings.retry_min_s * 2 ** min(self._failures - 1, 30),
        )
        delay = self._rng.uniform(self._settings.retry_min_s / 2, cap)
        return max(delay, retry_after or 0.0)

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
        """POST the bodies, in parallel once a first write succeeded; raise the worst failure."""
        if self._pool is None or len(bodies) == 1 or not self._warm:
            for body in bodies:  # the first write also sets up the client: keep it alone
                self._post_body(body)
            self._warm = True
            return
        futures = [self._pool.submit(self._post_body, body) for body in bodies[1:]]
        errors: list[BaseException] = []
        try:
            self._post_body(bodies[0])
        except InfluxError as exc:
            errors.append(exc)
        errors.extend(e for e in (f.exception() for f in futures) if e is not None)
        if errors:  # fatal before retryable before rejected (which bisects the whole batch)
            raise min(errors, key=_severity)

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
