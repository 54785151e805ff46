"""Supervised threads: a worker that dies is logged, counted, restarted with capped backoff.

A writer lane or the committer that met an unexpected exception used to end silently while
``/healthz`` still said healthy (issue 15 item 7). Each now runs under a :class:`Supervisor`,
like an OTP supervisor with a restart intensity: the exception is logged with its traceback,
``equipmon_collector_thread_restarts_total{thread=...}`` counts it, the thread is restarted
after a delay that doubles up to ``restart_max_s`` (so a fault that persists does not spin),
and the part reports down, which turns ``/healthz`` unhealthy, until it has run
``healthy_after_s`` without dying again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Worker:
    name: str
    target: Callable[[], None]
    stop: threading.Event
    thread: threading.Thread | None = None
    crashed_at: float | None = None
    error: str = ""
    running: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class Supervisor:
    """Starts workers in threads and restarts the ones that die."""

    def __init__(
        self,
        restarts: Counter,
        *,
        restart_min_s: float = 0.5,
        restart_max_s: float = 10.0,
        healthy_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min = restart_min_s
        self._max = restart_max_s
        self._healthy_after = healthy_after_s
        self._clock = clock
        self._workers: list[_Worker] = []
        self.restarts = restarts  # labelled by thread name

    def spawn(
        self, name: str, target: Callable[[], None], stop: threading.Event
    ) -> threading.Thread:
        """Run ``target`` in a thread until ``stop`` is set; restart it whenever it dies.

        ``target`` returns only once ``stop`` is set; returning before is a death too. The
        thread returned is the supervising one (join it after setting ``stop``).
        """
        worker = _Worker(name, target, stop)
        self.restarts.labels(name)  # exported at 0 from the start
        worker.thread = threading.Thread(target=self._loop, args=(worker,), name=name, daemon=True)
        self._workers.append(worker)
        worker.running = True
        worker.thread.start()
        return worker.thread

    def down(self) -> dict[str, str]:
        """The workers that are down, or died less than ``healthy_after_s`` ago: name → error."""
        now = self._clock()
        out = {}
        for worker in self._workers:
            with worker.lock:
                recent = worker.crashed_at is not None and now - worker.crashed_at < (
                    self._healthy_after
                )
                if (not worker.running or recent) and not worker.stop.is_set():
                    out[worker.name] = worker.error
        return out

    def _loop(self, worker: _Worker) -> None:
        delay = self._min
        while not worker.stop.is_set():
            started = self._clock()
            try:
                worker.target()
                if worker.stop.is_set():
                    return
                raise RuntimeError("the thread returned while the collector runs")
            except Exception as exc:  # the point of a supervisor: any death is caught here
                if worker.stop.is_set():
                    log.warning("%s ended with an error while stopping: %s", worker.name, exc)
                    return
                if self._clock() - started >= self._healthy_after:
                    delay = self._min  # it had run well for a while: a fresh fault
                with worker.lock:
                    worker.running = False
                    worker.crashed_at = self._clock()
                    worker.error = f"{type(exc).__name__}: {exc}"
                self.restarts.labels(worker.name).inc()
                log.exception("%s died; restarting it in %.1f s", worker.name, delay)
            if worker.stop.wait(delay):
                return
            delay = min(2 * delay, self._max)
            with worker.lock:
                worker.running = True
                worker.crashed_at = self._clock()  # healthy again once it has run a while
            log.info("%s restarted", worker.name)
