"""The operations endpoint every equipmon service exposes: ``/metrics`` (Prometheus text) and
``/healthz`` (JSON, 200 or 503), plus any GET or POST routes a service adds (analytics:
``GET /assets``, ``POST /train``).
It lives here because the services may not import one another."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
# A POST route: it reads the request and answers it (with reply() or reply_json()).
PostRoute = Callable[[BaseHTTPRequestHandler], None]
# A GET route: a JSON document (read-only state, such as which assets are scored yet).
GetRoute = Callable[[], dict[str, Any]]


def reply(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    """Send a complete response."""
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def reply_json(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Send a JSON response."""
    reply(request, status, json.dumps(body).encode(), "application/json")


class HttpEndpoint:
    """Serves metrics, health and the service's POST routes on a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: HealthCheck,
        *,
        name: str = "ops-http",
        post_routes: dict[str, PostRoute] | None = None,
        get_routes: dict[str, GetRoute] | None = None,
    ) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint._handle(self)

            def do_POST(self) -> None:
                route = endpoint._post_routes.get(self.path.split("?", 1)[0])
                if route is None:
                    reply_json(self, 404, {"detail": "not found"})
                    return
                try:
                    route(self)
                except Exception:  # a route's bug must not kill the server thread
                    log.exception("POST %s failed", self.path)
                    reply_json(self, 500, {"detail": "internal error"})

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self._registry = registry
        self._health = health
        self._post_routes = dict(post_routes or {})
        self._get_routes = dict(get_routes or {})
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self._server.server_address[0], self.port)

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
        elif path in self._get_routes:
            body, status, content_type = (
                json.dumps(self._get_routes[path]()).encode(),
                200,
                "application/json",
            )
        else:
            body, status, content_type = b"not found\n", 404, "text/plain"
        reply(request, status, body, content_type)
