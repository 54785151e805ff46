"""What the service reads from the API (role ``service``): alert outcomes and sensor limits.

Used from a background thread (``Periodic``), never from the tick: an API outage only delays
feedback and limit updates. Errors are ``ApiReadError``; the caller logs and tries again later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from analytics.errors import ApiReadError
from analytics.settings import ApiSettings

logger = logging.getLogger(__name__)

AssetKey = tuple[str, str]
SensorLimits = dict[AssetKey, dict[str, tuple[float | None, float | None]]]
PAGE = 500  # the API's largest page


class ApiReader:
    """GETs against the API with the service token."""

    def __init__(self, settings: ApiSettings, token: str) -> None:
        self._client = httpx.Client(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ApiReadError(f"GET {path}: API unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ApiReadError(f"GET {path}: {response.status_code} {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise ApiReadError(f"GET {path}: not JSON") from exc

    def _pages(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._get(path, {**(params or {}), "limit": PAGE, "offset": len(items)})
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items

    def outcomes(self, since: str) -> list[dict[str, Any]]:
        """GET /api/v1/alerts/outcomes?since= (alerts or work orders changed since then)."""
        body = self._get("/api/v1/alerts/outcomes", {"since": since, "limit": 10_000})
        if not isinstance(body, list):
            raise ApiReadError("outcomes: expected a list")
        return body

    def sensor_limits(self) -> SensorLimits:
        """min/max of every registered sensor, by (site code, asset code)."""
        try:
            sites = {s["id"]: s["code"] for s in self._pages("/api/v1/sites")}
            limits: SensorLimits = {}
            for asset in self._pages("/api/v1/assets"):
                key = (sites.get(asset["site_id"], ""), asset["code"])
                sensors = self._pages(f"/api/v1/assets/{asset['id']}/sensors")
                limits[key] = {
                    s["name"]: (s.get("min_value"), s.get("max_value"))
                    for s in sensors
                    if s.get("min_value") is not None or s.get("max_value") is not None
                }
        except (KeyError, TypeError) as exc:
            raise ApiReadError(f"unexpected asset or sensor list: {exc!r}") from exc
        return limits

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class Periodic:
    """Runs a job every interval_s on its own thread; a failing job is logged, not fatal."""

    def __init__(self, name: str, interval_s: float, job: Callable[[], None]) -> None:
        self._interval_s = interval_s
        self._job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Run the job now and then every interval."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the job in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._job()
            except ApiReadError as exc:
                logger.warning("%s: %s", self._thread.name, exc)
            except Exception:
                logger.exception("%s failed", self._thread.name)
            self._stop.wait(self._interval_s)
