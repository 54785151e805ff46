"""Prometheus metrics of the detector service and its ``/metrics`` + ``/healthz`` endpoint."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

logger = logging.getLogger(__name__)

NS = "equipmon_analytics"
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class Metrics:
    """Every metric the service exports, on a registry of its own (no globals)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.ticks = Counter(f"{NS}_ticks", "Ticks run, by result.", ["result"], registry=r)
        self.tick_seconds = Histogram(f"{NS}_tick_seconds", "Duration of one tick.", registry=r)
        self.rows_scored = Counter(f"{NS}_rows_scored", "Rows fed to fitted scorers.", registry=r)
        self.rows_buffered = Counter(
            f"{NS}_rows_buffered", "Rows kept as baseline of assets not yet fitted.", registry=r
        )
        self.fits = Counter(
            f"{NS}_fits", "Asset baselines fitted, by result.", ["result"], registry=r
        )
        self.assets = Gauge(f"{NS}_assets", "Assets seen, by phase.", ["phase"], registry=r)
        self.alarms_active = Gauge(f"{NS}_alarms_active", "Assets in alarm.", registry=r)
        self.transitions = Counter(
            f"{NS}_alarm_transitions", "Alarm raises and clears.", ["state"], registry=r
        )
        self.posts = Counter(
            f"{NS}_alert_posts", "Alert post attempts, by outcome.", ["outcome"], registry=r
        )
        self.outbox = Gauge(f"{NS}_outbox_pending", "Alert posts not yet delivered.", registry=r)


class HttpEndpoint:
    """Serves ``/metrics`` and ``/healthz`` on a background thread."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: HealthCheck
    ) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("http: " + format, *args)

        self._registry = registry
        self._health = health
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="analytics-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()
        logger.info("metrics on http://%s:%d/metrics", self._server.server_address[0], self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            body, status, content_type = generate_latest(self._registry), 200, CONTENT_TYPE_LATEST
        elif path == "/healthz":
            ok, details = self._health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **details}).encode()
            status, content_type = (200 if ok else 503), "application/json"
        else:
            body, status, content_type = b"not found\n", 404, "text/plain"
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
