"""An HTTP proxy in front of the test's InfluxDB: injects faults by phase, counts what it passed.

The phases are (behaviour, seconds) run in order from ``start_phases``; after the last one
requests pass. Behaviours: ``pass`` (forward), ``503``/``500`` (answer that status without
forwarding), ``429`` (answer 429 with ``Retry-After``), ``slow`` (wait ``slow_s`` then forward:
an answer near the client's timeout), ``503w`` (writes answer 503, ``/ping`` passes: a server
that is up but refuses writes). Every write InfluxDB confirmed through the proxy is
counted by its lines, so a test can check that each point was written exactly once.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from stack.process import free_port


class InfluxProxy:
    """``url`` is where clients go; ``upstream`` is the real InfluxDB."""

    def __init__(self, upstream: str, *, retry_after_s: int = 1, slow_s: float = 1.0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 8086)
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        self._lock = threading.Lock()
        self._phases: list[tuple[str, float]] = []
        self._started = 0.0
        self.lines_written = 0
        self.writes: list[tuple[float, int]] = []  # (monotonic time, lines) per confirmed write
        self.answered: dict[str, int] = {}  # requests answered per behaviour
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_phases(self, phases: list[tuple[str, float]]) -> None:
        """Run these phases from now on (then pass)."""
        with self._lock:
            self._phases = list(phases)
            self._started = time.monotonic()

    def passes_since(self) -> float:
        """When the proxy began to pass requests after the phases (monotonic time)."""
        with self._lock:
            return self._started + sum(seconds for _, seconds in self._phases)

    def behaviour(self) -> str:
        with self._lock:
            elapsed = time.monotonic() - self._started
            for name, seconds in self._phases:
                if elapsed < seconds:
                    return name
                elapsed -= seconds
        return "pass"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[
        int, list[tuple[str, str]], bytes
    ]:  # fmt: skip
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        except OSError as exc:
            return 502, [], f"proxy: upstream unreachable: {exc}".encode()
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as InfluxDB serves the client

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test counts instead."""

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                skip = {"content-length", "transfer-encoding", "connection", "date", "server"}
                for key, value in headers:
                    if key.lower() not in skip:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                behaviour = proxy.behaviour()
                if behaviour == "503w" and "write" not in self.path:
                    behaviour = "pass"
                with proxy._lock:
                    proxy.answered[behaviour] = proxy.answered.get(behaviour, 0) + 1
                if behaviour in ("503", "500", "503w"):
                    error = b'{"error":"proxy: injected fault"}'
                    status = int(behaviour.rstrip("w"))
                    self._answer(status, [("Content-Type", "application/json")], error)
                    return
                if behaviour == "429":
                    headers = [("Retry-After", str(proxy.retry_after_s))]
                    self._answer(429, headers, b'{"error":"proxy: slow down"}')
                    return
                if behaviour == "slow":
                    time.sleep(proxy.slow_s)  # pacing: a slow answer is what this proxy simulates
                keep = {"content-type", "authorization", "accept", "accept-encoding"}
                sent = {k: v for k, v in self.headers.items() if k.lower() in keep}
                status, answer_headers, data = proxy._forward(self.command, self.path, sent, body)
                if "write" in self.path and 200 <= status < 300:
                    lines = sum(1 for line in body.split(b"\n") if line.strip())
                    with proxy._lock:
                        proxy.lines_written += lines
                        proxy.writes.append((time.monotonic(), lines))
                self._answer(status, answer_headers, data)

            do_GET = _serve  # noqa: N815 (http.server's naming)
            do_POST = _serve  # noqa: N815
            do_HEAD = _serve  # noqa: N815

        return Handler
