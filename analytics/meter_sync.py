"""Meters between the service and the API: post what moved, catch up after an outage, save.

analytics.meters counts each asset's running hours, starts and rule meters. The service posts
them (``POST /api/v1/meters/counted``) as lifetime totals, so a post that is lost or repeated
changes nothing: the next one carries the same totals or larger, and a failed post gives its
meters back for the next. After the service was down longer than a meter's gap, the readings
in between are read back from InfluxDB (at most ``meter_catch_up_s``) and counted, so the
hours a machine ran while the service was away are not lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from analytics.alerts_client import rfc3339
from analytics.meters import RUNNING_HOURS, STARTS, MeterBook, MeterState
from analytics.metrics import Metrics
from analytics.monitor import AssetMonitor, Points
from analytics.settings import LifecycleSettings
from analytics.source import AssetKey
from telemetry.errors import InfluxError

logger = logging.getLogger(__name__)

MeterPost = Callable[[list[dict[str, Any]]], dict[str, Any]]
Reader = Callable[[AssetKey, int, int], Points]


class MeterSync:
    """The service's side of the meters: posting, catching up and saving the book."""

    def __init__(
        self,
        book: MeterBook,
        post: MeterPost | None,
        read: Reader,
        lifecycle: LifecycleSettings,
        metrics: Metrics,
    ) -> None:
        self.book = book
        self._post = post
        self._read = read
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._refused: set[tuple[str, str]] = set()

    def post(self) -> None:
        """Send the meters that moved since the last post; on failure they go again next time."""
        changed = self.book.take_changed()
        units = {rule.name: rule.unit for rule in self._lifecycle.meter_rules}
        readings = counted_readings(changed, units)
        if not readings or self._post is None:
            return
        try:
            result = self._post(readings)
        except httpx.HTTPError as exc:
            self.book.give_back([key for key, _ in changed])
            self._metrics.meter_posts.labels("failed").inc()
            logger.warning("posting %d meter readings failed: %s", len(readings), exc)
            return
        self._metrics.meter_posts.labels("ok").inc()
        for item in result.get("rejected", []):
            # Once per meter and reason: an asset the API does not know is refused every time.
            seen = (str(item.get("meter")), str(item.get("reason")))
            if seen not in self._refused:
                self._refused.add(seen)
                logger.warning("meter reading refused by the API: %s", item)

    def catch_up(self, key: AssetKey, monitor: AssetMonitor, first_ns: int) -> None:
        """Count the readings between an asset's last count and this window (the service was
        down longer than its look-back: one read, at most ``meter_catch_up_s`` back)."""
        lc = self._lifecycle
        counter = monitor.meters
        if counter is None or not counter.state.through_ns:
            return
        gap_ns = first_ns - counter.state.through_ns
        if gap_ns <= lc.meter_max_gap_s * 1e9:
            return
        start_ns = max(counter.state.through_ns + 1, first_ns - int(lc.meter_catch_up_s * 1e9))
        try:
            points = self._read(key, start_ns, first_ns - 1)
        except InfluxError as exc:
            logger.warning("%s/%s: meter catch-up read failed: %s", *key, exc)
            return
        for t_ns, row in points:
            monitor.count(t_ns, row)
        if points:
            logger.info("%s/%s: meters caught up over %d readings", *key, len(points))

    def save(self) -> None:
        """Write the book if it changed (a failed write is logged; the next tick tries again)."""
        try:
            self.book.save_if_dirty()
        except OSError:
            logger.exception("could not save the meters")


def counted_readings(
    items: Sequence[tuple[AssetKey, MeterState]], units: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The API's counted-reading items for these states (running hours, starts, rule meters
    with their ``units`` by name)."""
    units = units or {}
    out = []
    for (site, asset), s in items:
        if not s.through_ns:
            continue
        common = {"site": site, "asset": asset, "at": rfc3339(s.through_ns)}
        out.append({**common, "name": RUNNING_HOURS, "value": s.running_s / 3600.0, "unit": "h"})
        out.append({**common, "name": STARTS, "value": float(s.starts), "unit": ""})
        for name, value in sorted(s.counted.items()):
            out.append({**common, "name": name, "value": value, "unit": units.get(name, "")})
    return out


class MeterPoster:
    """Posts counted meters to the API with the service token."""

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self._client = httpx.Client(
            base_url=url, timeout=timeout_s, headers={"Authorization": f"Bearer {token}"}
        )

    def post(self, readings: list[dict[str, Any]]) -> dict[str, Any]:
        """POST /api/v1/meters/counted; the API's answer (httpx.HTTPError when not 200)."""
        response = self._client.post("/api/v1/meters/counted", json={"readings": readings})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
