"""Running a scenario in one of three time modes.

- backfill: simulated time runs as fast as the CPU allows from the scenario start for its
  duration; readings go to a stream (stdout or file) or through the transports (which then
  block instead of dropping). Never reads the wall clock for data.
- accelerated: simulated time runs ``speed`` times faster than the wall clock (default 1440:
  one simulated day per minute); readings carry explicit simulated timestamps.
- realtime: simulated time is the wall clock; runs until stopped (or for ``duration``). With
  ``history_start_ns`` (the start of a healthy backfill of the same scenario and seed, written
  by ``device_sims backfill``) the simulation starts there and is replayed silently up to the
  wall clock first, so live readings continue the machine states of that history (its ambient
  weather, its warmed-up temperatures) instead of jumping away from them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from device_sims.control import ControlServer
from device_sims.engine import Sample, Simulation
from device_sims.fleet import TransportOptions, build_simulation, build_transports
from device_sims.formats import json_single, line_protocol
from device_sims.scenario import Scenario
from device_sims.timefmt import NS_PER_S
from device_sims.transports.base import Transport
from device_sims.truth import write_truth

log = logging.getLogger(__name__)

MODES = ("realtime", "accelerated", "backfill")
_TICK_NS = NS_PER_S  # how often (simulated) gateways get a chance to close old batches


class ByteSink(Protocol):
    """Where a backfill's stream goes: a binary file, stdout, or InfluxDB (device_sims.history)."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


@dataclass
class RunOptions:
    """How to run: mode, timing, outputs and control."""

    mode: str = "backfill"
    speed: float = 1440.0
    start_ns: int | None = None
    duration_ns: int | None = None
    out: ByteSink | None = None  # stream output (backfill), JSON lines or line protocol
    out_format: str = "jsonl"
    use_transports: bool = True
    truth_path: Path | None = None
    control_port: int | None = None
    ports_file: Path | None = None
    history_start_ns: int | None = None  # realtime: continue a backfill that started here


class Runner:
    """One run of a scenario: simulation, transports, control, ground truth."""

    def __init__(
        self, scenario: Scenario, options: RunOptions, transport_options: TransportOptions
    ) -> None:
        if options.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.scenario = scenario
        self.options = options
        start = options.start_ns
        if start is None and options.mode == "realtime":
            start = (time.time_ns() // NS_PER_S + 1) * NS_PER_S
        self._history = options.mode == "realtime" and options.history_start_ns is not None
        if self._history:
            # The scenario's faults count from the live start, not from the history's.
            self.sim: Simulation = build_simulation(
                scenario, options.history_start_ns, faults_from_ns=start
            )
        else:
            self.sim = build_simulation(scenario, start)
        self.start_ns = self.sim.start_ns
        duration = options.duration_ns
        if duration is None and options.mode != "realtime":
            duration = scenario.duration_ns
        # A live run that continues a history lasts its duration from the live start.
        first = start if self._history and start is not None else self.start_ns
        self.end_ns = None if duration is None else first + duration
        self.sites = {a.name: a.site for a in scenario.assets}
        self.by_asset: dict[str, Transport] = {}
        self.transports: dict[str, Transport] = {}
        if options.use_transports:
            self.by_asset, self.transports = build_transports(scenario, transport_options)
        self.control: ControlServer | None = None
        self.stop_event = threading.Event()
        self.count = 0
        self.endpoints: dict[str, str] = {}

    def stats(self) -> dict[str, Any]:
        """Counters of every transport, and readings generated."""
        return {"readings": self.count, **{k: t.stats() for k, t in self.transports.items()}}

    def write_truth(self) -> None:
        """Rewrite the ground-truth file (if one was asked for)."""
        if self.options.truth_path is not None:
            until = self.end_ns if self.end_ns is not None else max(self.sim.now_ns, 1) + 1
            with self.sim.lock:
                faults = list(self.sim.faults)
            if self.options.mode == "realtime":
                until = max(until, self.sim.now_ns + 1)
            write_truth(self.options.truth_path, faults, self.sites, until)

    def start(self) -> None:
        """Replay a history (if continuing one), open transports and the control API; publish
        their addresses."""
        if self._history:
            self._replay_history()
        for transport in self.transports.values():
            transport.start()
        for key, transport in self.transports.items():
            url = getattr(transport, "url", None)
            if url:
                self.endpoints[key] = url
        if self.options.control_port is not None and self.options.mode != "backfill":
            self.control = ControlServer(
                self.sim, self.options.control_port, self.stats, self.write_truth
            )
            self.control.start()
            self.endpoints["control"] = self.control.url
        if self.options.ports_file is not None:
            self.options.ports_file.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        self.write_truth()

    def _replay_history(self) -> None:
        """Step the simulation, emitting nothing, until it reaches the wall clock."""
        began, steps = time.monotonic(), 0
        while self.sim.next_time_ns() <= time.time_ns():
            now = time.time_ns()
            while self.sim.next_time_ns() <= now:
                self.sim.step()
                steps += 1
        self.start_ns = self.sim.next_time_ns()
        log.info(
            "continuing the history from %.1f h back: %d readings replayed in %.1f s",
            (self.start_ns - self.sim.start_ns) / NS_PER_S / 3600,
            steps,
            time.monotonic() - began,
        )

    def _emit(self, sample: Sample) -> None:
        out = self.options.out
        if out is not None:
            if self.options.out_format == "lp":
                out.write(line_protocol(sample).encode() + b"\n")
            else:
                out.write(json_single(sample) + b"\n")
        transport = self.by_asset.get(sample.asset)
        if transport is not None:
            transport.send(sample)

    def run(self, on_sample: Callable[[Sample], None] | None = None) -> int:
        """Run until the end time or until stop_event; returns readings generated."""
        sim, mode = self.sim, self.options.mode
        pace = mode != "backfill"
        speed = 1.0 if mode == "realtime" else self.options.speed
        wall0 = time.monotonic()
        if mode == "realtime":
            # Simulated time is the wall clock: the first reading waits for its own time.
            wall0 += (self.start_ns - time.time_ns()) / NS_PER_S
        next_tick = self.start_ns + _TICK_NS
        bar = _BackfillBar.open(self.start_ns, self.end_ns) if not pace else None
        try:
            self._loop(on_sample, pace, speed, wall0, next_tick, bar)
        finally:
            if bar is not None:
                bar.close()
        if self.end_ns is not None and not self.stop_event.is_set():
            sim.now_ns = self.end_ns
        return self.count

    def _loop(  # noqa: PLR0917  (run's state, handed over as it is)
        self,
        on_sample: Callable[[Sample], None] | None,
        pace: bool,
        speed: float,
        wall0: float,
        next_tick: int,
        bar: _BackfillBar | None,
    ) -> None:
        sim = self.sim
        while not self.stop_event.is_set():
            due = sim.next_time_ns()
            if self.end_ns is not None and due >= self.end_ns:
                break
            if pace:
                delay = wall0 + (due - self.start_ns) / NS_PER_S / speed - time.monotonic()
                if delay > 0 and self.stop_event.wait(min(delay, 0.25)):
                    break
                if delay > 0.25:
                    continue  # re-check: keeps the control API and stop responsive
            sample = sim.step()
            if due >= next_tick:
                for transport in self.transports.values():
                    transport.tick(due)
                next_tick = due + _TICK_NS
                if bar is not None:
                    bar.update(due, self.count)
            if sample is None:
                continue
            self.count += 1
            self._emit(sample)
            if on_sample is not None:
                on_sample(sample)

    def close(self, flush_timeout_s: float = 10.0) -> None:
        """Flush transports, write the ground truth, release everything."""
        for key, transport in self.transports.items():
            if not transport.flush(flush_timeout_s):
                log.warning("%s: not everything was delivered before shutdown", key)
        if self.options.out is not None:
            self.options.out.flush()
        self.write_truth()
        if self.control is not None:
            self.control.close()
        for transport in self.transports.values():
            transport.close()


class _BackfillBar:
    """A backfill's progress over simulated time, on stderr when it is a terminal (rich)."""

    def __init__(self, start_ns: int, end_ns: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._start_ns = start_ns
        self._progress = Progress(
            TextColumn("backfill"), BarColumn(), TextColumn("{task.fields[readings]:,} readings"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self._task = self._progress.add_task(
            "backfill", total=(end_ns - start_ns) / NS_PER_S, readings=0
        )
        self._progress.start()

    @classmethod
    def open(cls, start_ns: int, end_ns: int | None) -> _BackfillBar | None:
        """A bar for a bounded backfill on a terminal; None otherwise (logs and pipes)."""
        if end_ns is None or not sys.stderr.isatty():
            return None
        return cls(start_ns, end_ns)

    def update(self, now_ns: int, readings: int) -> None:
        self._progress.update(
            self._task, completed=(now_ns - self._start_ns) / NS_PER_S, readings=readings
        )

    def close(self) -> None:
        self._progress.stop()


def backfill_bytes(scenario: Scenario, out_format: str = "jsonl") -> bytes:
    """A whole backfill as bytes, without transports (tests and tools)."""
    import io

    buffer = io.BytesIO()
    runner = Runner(
        scenario,
        RunOptions(mode="backfill", out=buffer, out_format=out_format, use_transports=False),
        TransportOptions(),
    )
    runner.run()
    return buffer.getvalue()
