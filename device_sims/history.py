"""A healthy history written straight into InfluxDB: ``python -m device_sims backfill``.

A first run of the demo needs days-old data at once (analytics fits each asset on its stored
history), so the scenario's fleet is simulated as fast as the CPU allows over the span that
ends now and written in line protocol to InfluxDB's ``/write`` (1.x, and 2.x/3.x through their
v1 compatibility API). The scenario's faults are left out unless asked for: a history to learn
from is a healthy one. Like everything in device_sims this speaks only a wire protocol.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import httpx

from device_sims.fleet import TransportOptions
from device_sims.runner import Runner, RunOptions
from device_sims.scenario import Scenario
from device_sims.timefmt import NS_PER_S, format_rfc3339_ns

log = logging.getLogger(__name__)

# Lines per POST: InfluxDB's guide recommends batches of 5,000 points.
BATCH_LINES = 5000


class InfluxLineWriter:
    """A byte sink (``Runner``'s stream output) that POSTs line protocol in batches."""

    def __init__(self, url: str, database: str, *, timeout_s: float = 60.0) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)
        self._params = {"db": database, "precision": "ns"}
        self._lines: list[bytes] = []
        self.points = 0

    def write(self, data: bytes) -> int:
        """Take one or more complete lines."""
        self._lines.append(data)
        if len(self._lines) >= BATCH_LINES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        """POST what is buffered (RuntimeError naming InfluxDB's answer on a refusal)."""
        if not self._lines:
            return
        body = b"".join(self._lines)
        try:
            response = self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"InfluxDB at {self._client.base_url} unreachable: {exc}") from exc
        if response.status_code != 204:
            raise RuntimeError(
                f"InfluxDB refused the backfill ({response.status_code}): {response.text[:300]}"
            )
        self.points += len(self._lines)
        self._lines = []

    def close(self) -> None:
        """Release the connection."""
        self._client.close()


@dataclass(frozen=True)
class BackfillResult:
    """What one backfill wrote."""

    readings: int
    start_ns: int
    end_ns: int
    seconds: float

    def summary(self) -> str:
        """One line for people."""
        rate = self.readings / self.seconds if self.seconds > 0 else 0.0
        return (
            f"backfill: {self.readings:,} readings from {format_rfc3339_ns(self.start_ns)} to "
            f"{format_rfc3339_ns(self.end_ns)} in {self.seconds:.1f} s ({rate:,.0f} readings/s)"
        )


def backfill_influx(
    scenario: Scenario,
    url: str,
    database: str,
    *,
    duration_ns: int,
    end_ns: int | None = None,
    with_faults: bool = False,
) -> BackfillResult:
    """Simulate the ``duration_ns`` that ends at ``end_ns`` (default: now) into InfluxDB."""
    end = end_ns if end_ns is not None else time.time_ns() // NS_PER_S * NS_PER_S
    start = end - duration_ns
    if not with_faults:
        scenario = replace(scenario, faults=[])
    writer = InfluxLineWriter(url, database)
    began = time.monotonic()
    try:
        runner = Runner(
            scenario,
            RunOptions(
                mode="backfill",
                start_ns=start,
                duration_ns=duration_ns,
                out=writer,
                out_format="lp",
                use_transports=False,
            ),
            TransportOptions(),
        )
        count = runner.run()
        writer.flush()
    finally:
        writer.close()
    return BackfillResult(count, start, end, time.monotonic() - began)
