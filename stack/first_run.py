"""A first run that is ready at once: a healthy history for the demo fleet, then scoring.

On a fresh data folder the supervisor backfills the demo scenario's fleet into InfluxDB
(``python -m device_sims backfill``, hours of healthy history ending now, written in seconds)
while the API starts. Analytics then starts on that history: its first tick finds
``train_after_s`` of data for every asset and fits at once, and it refits each on the whole
history in the background. The supervisor asks analytics (``GET /assets``) until the demo's
fault asset is scored, so the banner's inject command is one that will raise an alert.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

# The asset and fault the banner offers to inject, and the ramp that makes it show in minutes.
DEMO_SITE, DEMO_ASSET, DEMO_FAULT, DEMO_RAMP = "plant-a", "pump-01", "bearing_wear", "2m"
# What the banner promises: minutes from the inject command to the alert and its work order
# (tests/stack/test_first_run.py measured 63 s with the 2-minute ramp on a loaded machine).
ALERT_WITHIN_MIN = 2
# analytics' status message of an asset whose fit on stored history is under way
FITTING = "fitting on stored history"
# How long the supervisor waits for analytics to score the demo asset before it says so.
SCORING_WAIT_S = 180.0


class Backfill:
    """``python -m device_sims backfill`` as a child whose progress bar is the terminal's.

    The history ends now and starts ``history_s`` before; the live simulators are started
    with ``--history-start`` at the same instant, so they replay it silently and carry on from
    its machine states (a fresh simulation would start at other temperatures and weather,
    and every model would alarm on the jump)."""

    def __init__(self, scenario: Path, influx_url: str, history_s: float, log_path: Path) -> None:
        self.history_s = history_s
        self._log_path = log_path
        self._began = time.monotonic()
        end = datetime.now(UTC).replace(microsecond=0)
        self.start = _rfc3339(end - timedelta(seconds=history_s))
        self.end = _rfc3339(end)
        command = [
            *(sys.executable, "-m", "device_sims", "backfill", str(scenario)),
            *("--influx-url", influx_url, "--database", "equipmon"),
            *("--start", self.start, "--end", self.end),
        ]
        log.info("backfilling %.3g h of healthy history for the demo fleet", history_s / 3600)
        # stderr stays the supervisor's: on a terminal the child draws its bar there; its log
        # lines (and what went wrong) go there too.
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def wait(self, timeout_s: float = 600.0) -> float | None:
        """Wait for the backfill to finish; its wall time, or None when it failed (the demo
        still runs: analytics then learns from live data, as it would without a history)."""
        try:
            code = self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        if code != 0:
            log.warning(
                "the backfill failed (exit code %s, see above): analytics learns the demo "
                "fleet from live data instead",
                code,
            )
            return None
        seconds = time.monotonic() - self._began
        record = {"start": self.start, "end": self.end, "seconds": round(seconds, 1)}
        self._log_path.write_text(json.dumps(record) + "\n")
        return seconds

    def stop(self) -> None:
        """Stop it if it still runs (Ctrl-C during start-up)."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(30)


@dataclass
class Scoring:
    """What analytics says: assets scored, being fitted on history, learning from live data,
    and the demo asset."""

    scored: int = 0
    total: int = 0
    fitting: list[str] = field(default_factory=list)
    learning: list[str] = field(default_factory=list)
    demo: dict[str, Any] | None = None

    @property
    def demo_scored(self) -> bool:
        """Whether the demo's fault asset is scored."""
        return bool(self.demo and self.demo.get("scoring"))


def ask_scoring(analytics_url: str) -> Scoring | None:
    """Analytics' view of the fleet; None while it cannot be asked."""
    try:
        document = httpx.get(f"{analytics_url}/assets", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    assets = document.get("assets", [])
    demo = next(
        (a for a in assets if a.get("site") == DEMO_SITE and a.get("asset") == DEMO_ASSET), None
    )
    waiting = [a for a in assets if not a.get("scoring")]
    fitting = [str(a.get("asset")) for a in waiting if a.get("message") == FITTING]
    learning = [str(a.get("asset")) for a in waiting if a.get("message") != FITTING]
    return Scoring(len(assets) - len(waiting), len(assets), fitting, learning, demo)


def wait_for_scoring(
    analytics_url: str, stop: Callable[[], bool], timeout_s: float = SCORING_WAIT_S
) -> Scoring | None:
    """Poll analytics until it scores the demo asset (or timeout, or ``stop()``); a status
    line on a terminal meanwhile."""
    deadline = time.monotonic() + timeout_s
    status = _Status.open()
    found: Scoring | None = None
    try:
        while time.monotonic() < deadline and not stop():
            found = ask_scoring(analytics_url)
            if found is not None:
                status.update(f"analytics: {found.scored} of {found.total} assets scored")
                if found.demo_scored:
                    return found
            time.sleep(1.0)
        return found
    finally:
        status.close()


class _Status:
    """A one-line rich status on stderr when it is a terminal, else nothing."""

    def __init__(self) -> None:
        from rich.console import Console

        self._status = Console(stderr=True).status("analytics: starting")
        self._status.start()

    @classmethod
    def open(cls) -> _Status | _NoStatus:
        return cls() if sys.stderr.isatty() else _NoStatus()

    def update(self, text: str) -> None:
        self._status.update(text)

    def close(self) -> None:
        self._status.stop()


class _NoStatus:
    def update(self, text: str) -> None:
        """Nothing to draw off a terminal."""

    def close(self) -> None:
        """Nothing to close."""


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration_s(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``6h`` or ``1d`` in seconds (ValueError otherwise)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (e.g. 6h, 1d)") from None
    if value < 0:
        raise ValueError(f"a duration cannot be negative: {text!r}")
    return value


def inject_command(control: str, analytics_url: str) -> str:
    """The banner's inject command (it waits, should analytics still learn the asset)."""
    return (
        f".venv/bin/python -m device_sims inject {DEMO_ASSET} {DEMO_FAULT} --ramp {DEMO_RAMP} "
        f"--control {control} --analytics {analytics_url} --wait"
    )


def describe_scoring(found: Scoring | None) -> list[str]:
    """The banner's lines on what analytics does now."""
    if found is None:
        return ["  Analytics:    not answering yet (see its log)"]
    line = f"  Analytics:    scoring {found.scored} of {found.total} assets"
    if found.fitting:
        line += f"; {len(found.fitting)} more being fitted on their history"
    if found.learning:
        line += f"; learning from live data: {', '.join(sorted(found.learning))}"
    return [line]
