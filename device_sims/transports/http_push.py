"""HTTP push gateway: batches readings of its assets and POSTs them to the API.

Delivery rules (the API's contract): 2xx = stored, drop from the buffer; 503 or 429 = keep and
retry after ``Retry-After`` (seconds or an HTTP date); connection errors and other 5xx = keep
and retry with exponential backoff; any other 4xx = the batch is bad data, log and drop it.
The buffer is bounded and resent oldest first.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import threading
import time
from urllib.parse import urlsplit

from device_sims.engine import Sample
from device_sims.transports.base import Outbox
from device_sims.transports.batching import Batch, Batcher

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0  # a gateway should not hammer a recovering API, nor wait for minutes


def retry_after_s(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class HttpGateway:
    """One gateway: its own batcher, bounded outbox and sender thread."""

    def __init__(
        self,
        gateway_id: str,
        api_url: str,
        token: str,
        *,
        fmt: str = "json",
        batch_size: int = 100,
        batch_age_ns: int = 5_000_000_000,
        buffer_batches: int = 1000,
        block: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.gateway_id = gateway_id
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"gateway {gateway_id}: api url must be http(s)://host[:port]")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/api/v1/readings"
        if fmt == "lp":
            self._path += "?precision=ns"
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "text/plain; charset=utf-8" if fmt == "lp" else "application/json",
            "User-Agent": f"equipmon-device-sims/{gateway_id}",
        }
        self._timeout = timeout_s
        self.batcher = Batcher(fmt, batch_size, batch_age_ns)
        self.outbox: Outbox[Batch] = Outbox(buffer_batches, block=block)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"http-{gateway_id}", daemon=True)
        self._conn: http.client.HTTPConnection | None = None
        self.counters = {
            "batches_sent": 0, "readings_sent": 0, "retries": 0, "rejected": 0, "reconnects": 0
        }  # fmt: skip

    def start(self) -> None:
        """Start the sender thread."""
        self._thread.start()

    def send(self, sample: Sample) -> None:
        """Add a reading to the open batch."""
        with self._lock:
            batches = self.batcher.add(sample)
        for batch in batches:
            self.outbox.put(batch)

    def tick(self, now_ns: int) -> None:
        """Close batches older than the batch age."""
        with self._lock:
            batches = self.batcher.due(now_ns)
        for batch in batches:
            self.outbox.put(batch)

    def flush(self, timeout_s: float) -> bool:
        """Close open batches and wait until the buffer is delivered."""
        with self._lock:
            batches = self.batcher.drain()
        for batch in batches:
            self.outbox.put(batch)
        return self.outbox.wait_empty(timeout_s)

    def close(self) -> None:
        """Stop the sender (undelivered batches are reported in stats)."""
        self._stop.set()
        self.outbox.close()
        if self._thread.is_alive():
            self._thread.join(5.0)
        if self._conn is not None:
            self._conn.close()

    def stats(self) -> dict[str, int]:
        """Delivery counters and the buffer state."""
        return {**self.counters, "buffered": len(self.outbox), "dropped": self.outbox.dropped}

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _post(self, batch: Batch) -> tuple[int, str | None]:
        """POST a batch; a kept-alive connection the server closed meanwhile (its idle timeout,
        a normal close) is reopened once without a warning, as HTTP clients do. Resending is
        safe: a batch written twice is the same points."""
        reused = self._conn is not None
        try:
            return self._post_once(batch)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            if not reused:
                raise
            self._drop_connection()
            self.counters["reconnects"] += 1
            return self._post_once(batch)

    def _post_once(self, batch: Batch) -> tuple[int, str | None]:
        conn = self._connection()
        conn.request("POST", self._path, body=batch.payload, headers=self._headers)
        response = conn.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        return response.status, response.getheader("Retry-After")

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            batch = self.outbox.peek(0.5)
            if batch is None:
                continue
            try:
                status, retry_after = self._post(batch)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                log.warning(
                    "gateway %s: API unreachable (%s), retry in %.1fs",
                    self.gateway_id,
                    exc,
                    backoff,
                )
                self.counters["retries"] += 1
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if 200 <= status < 300:
                self.counters["batches_sent"] += 1
                self.counters["readings_sent"] += batch.count
                self.outbox.done(batch)
                backoff = 0.5
            elif status in (429, 503) or status >= 500:
                delay = min(MAX_BACKOFF_S, retry_after_s(retry_after, backoff))
                log.warning(
                    "gateway %s: API answered %d, retry in %.1fs", self.gateway_id, status, delay
                )
                self.counters["retries"] += 1
                self._stop.wait(delay)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            else:
                log.error(
                    "gateway %s: API rejected a batch of %d readings with %d; dropped",
                    self.gateway_id,
                    batch.count,
                    status,
                )
                self.counters["rejected"] += 1
                self.outbox.done(batch)
