"""ASGI middleware: request latency metrics, an access log line and a `Server-Timing` header;
Secure cookies over TLS."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics

log = logging.getLogger("api.access")


class MetricsMiddleware:
    """Times every HTTP request (pure ASGI: no per-request task like BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and record its status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The app's own time to the response's head (RFC: W3C Server Timing), so a
                # client (a browser's devtools, bench.api_load) can tell it from queueing.
                took = (time.perf_counter() - start) * 1000
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"server-timing", f"app;dur={took:.2f}".encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            # The template (/work-orders/{order_id}), not the path, keeps label cardinality low.
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(elapsed)
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def _has_secure(cookie: bytes) -> bool:
    # The attribute, not the word: a cookie's value may say "secure" too.
    return any(part.strip().lower() == b"secure" for part in cookie.split(b";")[1:])


class SecureCookieMiddleware:
    """Marks every cookie the app sets `Secure` when the request came over TLS, or always.

    One place decides for the session, flash and deletion cookies alike. Over TLS means the
    request's scheme is https: directly, or through `X-Forwarded-Proto` from a proxy listed in
    `api.trusted_proxies` (uvicorn applies it). `always=True` (`api.secure_cookies`) covers a
    TLS-terminating proxy that sends no such header.
    """

    def __init__(self, app: ASGIApp, *, always: bool) -> None:
        self.app = app
        self.always = always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding `; Secure` to Set-Cookie headers that lack it."""
        if scope["type"] != "http" or not (self.always or scope.get("scheme") == "https"):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; Secure")
                    if name.lower() == b"set-cookie" and not _has_secure(value)
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)
