"""Asset status posts: the latest state of every monitored asset, once per tick.

``POST /api/v1/asset-status`` with ``{"items": [...]}`` (at most 5,000 items per request).
Statuses are a snapshot, not a log: the sender keeps only the newest batch (a batch not yet
sent is replaced by the next tick's), sends it on its own thread after the alert outbox has
drained (alerts first, status never delays them), and retries a failed batch until a newer
one replaces it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from analytics.alerts_client import RETRIED_STATUSES, rfc3339
from analytics.errors import AlertPostError, BadItemError
from analytics.scorer import Decision
from analytics.settings import ApiSettings
from telemetry.retry import Backoff, log_retry

logger = logging.getLogger(__name__)

MAX_ITEMS = 5000
# An asset the API does not know rejects a whole batch (422 naming the item); it is then left
# out of batches for this long (it may be registered meanwhile).
UNKNOWN_RETRY_S = 600.0
_WHERE = re.compile(r"^items\[(\d+)\]")


STATES = ("learning", "normal", "alarm", "instrument", "stale")


def status_item(
    key: tuple[str, str],
    state: str,
    observed_ns: int,
    decision: Decision | None = None,
    *,
    message: str | None = None,
    learning_until_ns: int | None = None,
) -> dict[str, Any]:
    """One asset's status in the API's contract."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    item: dict[str, Any] = {
        "site": key[0],
        "asset": key[1],
        "state": state,
        "health": None,
        "score": None,
        "threshold": None,
        "contributors": [],
        "observed_at": rfc3339(observed_ns),
    }
    if decision is not None:
        item["health"] = round(min(100.0, max(0.0, decision.health)), 2)
        item["score"] = round(decision.score, 6) if math.isfinite(decision.score) else None
        item["threshold"] = round(decision.threshold, 6)
        item["contributors"] = [{"sensor": s, "share": sh} for s, sh in decision.top_sensors]
    if message:
        item["message"] = message[:1000]
    if learning_until_ns is not None:
        item["learning_until"] = rfc3339(learning_until_ns)
    return item


class StatusClient:
    """POSTs status batches with the service token."""

    def __init__(self, settings: ApiSettings, token: str) -> None:
        self._client = httpx.Client(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers={"Authorization": f"Bearer {token}"},
        )

    def post(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """One request of at most MAX_ITEMS; the API's answer, or AlertPostError."""
        try:
            response = self._client.post("/api/v1/asset-status", json={"items": items})
        except httpx.HTTPError as exc:
            raise AlertPostError(f"API unreachable: {exc}", retry=True) from exc
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code == 422:
            try:
                match = _WHERE.match(str(response.json().get("where", "")))
            except ValueError:
                match = None
            if match:
                raise BadItemError(response.text[:300], int(match.group(1)))
        retry = response.status_code >= 500 or response.status_code in RETRIED_STATUSES
        raise AlertPostError(
            f"API answered {response.status_code}: {response.text[:300]}", retry=retry
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class StatusSender:
    """Sends the newest status batch in the background; older unsent batches are dropped."""

    def __init__(
        self,
        post: Callable[[list[dict[str, Any]]], object],
        *,
        alerts_first: Callable[[float], object] = lambda _timeout: None,
        wait_s: float = 10.0,
        backoff: Backoff | None = None,
        on_result: Callable[[str, int], None] = lambda _outcome, _n: None,
    ) -> None:
        self._post = post
        self._alerts_first = alerts_first
        self._wait_s = wait_s
        self._backoff = backoff or Backoff(1.0, 30.0)
        self._failures = 0
        self._on_result = on_result
        self._pending: list[dict[str, Any]] | None = None
        self._unknown: dict[tuple[str, str], float] = {}
        self._busy = False
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="analytics-status", daemon=True)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread.start()

    def offer(self, items: list[dict[str, Any]]) -> None:
        """Make items the next batch to send (replacing one not sent yet); never blocks."""
        with self._cond:
            if self._pending is not None:
                self._on_result("coalesced", len(self._pending))
            self._pending = items
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no batch is pending or being sent; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._pending is None and not self._busy, timeout=timeout_s
            )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Give a pending batch timeout_s, then stop."""
        self.wait_idle(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s + 5)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                if self._stopping:
                    return
                self._busy = True
            # Alerts go first: give the outbox a chance to drain before the status batch.
            self._alerts_first(self._wait_s)
            with self._cond:
                batch, self._pending = self._pending, None
            ok = batch is None or self._send(batch)
            self._failures = 0 if ok else self._failures + 1
            delay = self._backoff.delay(self._failures) if not ok else 0.0
            if not ok:
                log_retry(logger, "status post", self._failures, delay, "see above")
            with self._cond:
                if not ok and self._pending is None:
                    self._pending = batch  # nothing newer arrived: try this one again
                self._busy = False
                self._cond.notify_all()
                if not ok:
                    self._cond.wait_for(lambda: self._stopping, timeout=delay)

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        now = time.monotonic()
        self._unknown = {k: t for k, t in self._unknown.items() if now - t < UNKNOWN_RETRY_S}
        batch = [i for i in batch if (i["site"], i["asset"]) not in self._unknown]
        for start in range(0, len(batch), MAX_ITEMS):
            chunk = batch[start : start + MAX_ITEMS]
            if not self._send_chunk(chunk, now):
                return False
        return True

    def _send_chunk(self, chunk: list[dict[str, Any]], now: float) -> bool:
        while chunk:
            try:
                self._post(chunk)
            except BadItemError as exc:
                if not 0 <= exc.index < len(chunk):
                    logger.error("status batch rejected: %s", exc)
                    self._on_result("rejected", len(chunk))
                    return True
                bad = chunk[exc.index]
                logger.warning(
                    "status of %s/%s refused, left out: %s", bad["site"], bad["asset"], exc
                )
                self._unknown[(bad["site"], bad["asset"])] = now
                self._on_result("rejected", 1)
                chunk = chunk[: exc.index] + chunk[exc.index + 1 :]
                continue
            except AlertPostError as exc:
                logger.warning("status post of %d assets failed: %s", len(chunk), exc)
                self._on_result("retry" if exc.retry else "rejected", len(chunk))
                return not exc.retry
            except Exception:
                logger.exception("status post failed")
                self._on_result("retry", len(chunk))
                return False
            self._on_result("delivered", len(chunk))
            return True
        return True
