"""Alert posts of the detector service, and their API client behind an outbox.

Scoring never waits for the API: the detector enqueues alert conditions, and one background
thread posts them in order (the API ignores a post older than the alert's last detection, so
order matters) and retries failures with doubling delays: connection errors, timeouts,
408/425/429/5xx and 401/403 (a token being rotated) are retried; any other 4xx is a bad post
that is logged and dropped.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from analytics.errors import AlertPostError
from analytics.scorer import Decision
from analytics.settings import ApiSettings
from telemetry.retry import Backoff, log_retry

logger = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({401, 403, 408, 425, 429})


def severity(score: float, threshold: float) -> str:
    """Alert severity from how far the score is above the threshold."""
    ratio = score / threshold if threshold > 0 else math.inf
    if ratio >= 4:
        return "critical"
    return "high" if ratio >= 2 else "medium"


def rfc3339(time_ns: int) -> str:
    """UTC RFC 3339 text of a time in ns."""
    stamp = datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_body(key: tuple[str, str], time_ns: int, decision: Decision) -> dict[str, Any]:
    """The API's alert post for an alarm raise or clear."""
    site, asset = key
    leading = ", ".join(f"{s} {share:.0%}" for s, share in decision.top_sensors)
    message = f"anomaly on {asset}: {leading}" if decision.alarm else f"{asset} back to normal"
    return {
        "site": site,
        "asset": asset,
        "kind": "equipment_anomaly",
        "failure_mode": "anomaly",
        "state": "active" if decision.alarm else "normal",
        "severity": severity(decision.score, decision.threshold),
        "health": round(min(100.0, max(0.0, decision.health)), 2),
        "score": round(decision.score, 6) if math.isfinite(decision.score) else None,
        "threshold": round(decision.threshold, 6),
        "detected_at": rfc3339(time_ns),
        "contributors": [{"sensor": s, "share": share} for s, share in decision.top_sensors],
        "message": message,
    }


def instrument_body(
    key: tuple[str, str], kind: str, sensor: str, *, active: bool, time_ns: int, message: str
) -> dict[str, Any]:
    """The API's alert post for an instrument rule (failure_mode = the sensor, or "asset")."""
    site, asset = key
    return {
        "site": site,
        "asset": asset,
        "kind": kind,
        "failure_mode": sensor,
        "state": "active" if active else "normal",
        # An instrument fault blinds the model on that sensor but is not a machine failure.
        "severity": "medium",
        "detected_at": rfc3339(time_ns),
        "contributors": [] if sensor == "asset" else [{"sensor": sensor, "share": 1.0}],
        "message": message[:4000],
    }


class AlertsClient:
    """Posts one alert condition to the API with the service token."""

    def __init__(self, settings: ApiSettings, token: str) -> None:
        self._client = httpx.Client(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers={"Authorization": f"Bearer {token}"},
        )

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v1/alerts; the alert as the API returns it, or AlertPostError."""
        try:
            response = self._client.post("/api/v1/alerts", json=body)
        except httpx.HTTPError as exc:
            raise AlertPostError(f"API unreachable: {exc}", retry=True) from exc
        if response.status_code in (200, 201):
            result: dict[str, Any] = response.json()
            return result
        retry = response.status_code >= 500 or response.status_code in RETRIED_STATUSES
        raise AlertPostError(
            f"API answered {response.status_code}: {response.text[:500]}", retry=retry
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class Outbox:
    """A bounded FIFO of alert posts drained by one background thread with retry backoff."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], object],
        settings: ApiSettings,
        *,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self._send = send
        self._settings = settings
        self._on_result = on_result or (lambda _outcome: None)
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self.last_error: str | None = None  # why the last post failed (for the retry's log)
        self._thread = threading.Thread(target=self._run, name="analytics-outbox", daemon=True)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread.start()

    def put(self, body: dict[str, Any]) -> None:
        """Queue a post (never blocks; the oldest post is dropped when the outbox is full)."""
        with self._cond:
            if len(self._queue) >= self._settings.outbox_max:
                dropped = self._queue.popleft()
                logger.error(
                    "alert outbox full (%d): dropped the post for %s/%s",
                    self._settings.outbox_max,
                    dropped.get("site"),
                    dropped.get("asset"),
                )
                self._on_result("dropped")
            self._queue.append(body)
            self._cond.notify_all()

    def pending(self) -> int:
        """Posts not yet delivered (one being sent stays queued until it is done)."""
        with self._cond:
            return len(self._queue)

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until every queued post was delivered or dropped; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._busy, timeout=timeout_s
            )

    def stop(self, drain_s: float = 5.0) -> None:
        """Give queued posts drain_s to go out, then stop the thread."""
        self.wait_empty(drain_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(drain_s + self._settings.timeout_s)
        left = self.pending()
        if left:
            logger.error("stopping with %d undelivered alert posts", left)

    def _run(self) -> None:
        backoff = Backoff(self._settings.retry_min_s, self._settings.retry_max_s)
        failures = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                body = self._queue[0]
                self._busy = True
            outcome = self._attempt(body)
            with self._cond:
                self._busy = False
                if outcome != "retry" and self._queue and self._queue[0] is body:
                    self._queue.popleft()
                self._cond.notify_all()
            self._on_result(outcome)
            if outcome == "retry":
                failures += 1
                delay = backoff.delay(failures)
                log_retry(
                    logger,
                    f"alert post for {body.get('site')}/{body.get('asset')}",
                    failures,
                    delay,
                    self.last_error,
                )
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, timeout=delay)
            else:
                failures = 0

    def _attempt(self, body: dict[str, Any]) -> str:
        try:
            self._send(body)
        except AlertPostError as exc:
            if exc.retry:
                self.last_error = str(exc)  # logged with the retry (telemetry.retry.log_retry)
                return "retry"
            logger.error(
                "alert post for %s/%s rejected, dropped: %s",
                body.get("site"),
                body.get("asset"),
                exc,
            )
            return "rejected"
        except Exception as exc:
            # A bug in sending must not kill the thread; the post is kept and retried.
            logger.exception("alert post for %s/%s failed", body.get("site"), body.get("asset"))
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "retry"
        return "delivered"
