"""Control interface of a running simulation: small JSON API on localhost.

GET  /status           simulated time, assets, faults, transport counters
POST /faults           {"asset", "kind", "severity"?, "ramp"?, "growth"?, "sensor"?,
                        "params"?}  -> 201 {"fault": {...}}  (onset = simulated now)
POST /faults/clear     {"asset", "kind"?, "id"?}  -> {"cleared": [ids]}  (a repair)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from device_sims.engine import Simulation
from device_sims.faults import FAULTS, FaultSpec
from device_sims.timefmt import format_rfc3339_ns, parse_duration_s

log = logging.getLogger(__name__)


class ControlServer:
    """Serves the control API for one simulation on 127.0.0.1."""

    def __init__(
        self,
        sim: Simulation,
        port: int,
        stats: Callable[[], dict[str, Any]],
        on_change: Callable[[], None],
    ) -> None:
        self.sim = sim
        self._stats = stats
        self._on_change = on_change
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="control", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the control API."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def status(self) -> dict[str, Any]:
        """What GET /status answers."""
        sim = self.sim
        with sim.lock:
            return {
                "sim_time": format_rfc3339_ns(sim.now_ns),
                "assets": {n: a.machine_type for n, a in sim.assets.items()},
                "faults": [f.truth_record(sim.assets[f.asset].site) for f in sim.faults],
                "transports": self._stats(),
            }

    def inject(self, body: dict[str, Any]) -> FaultSpec:
        """Start a fault now (simulated time)."""
        kind = str(body.get("kind", ""))
        if kind not in FAULTS:
            raise ValueError(f"kind must be one of {sorted(FAULTS)}")
        info = FAULTS[kind]
        with self.sim.lock:
            spec = FaultSpec(
                asset=str(body.get("asset", "")),
                kind=kind,
                onset_ns=self.sim.now_ns,
                severity=float(body.get("severity", 1.0)),
                ramp_s=parse_duration_s(body.get("ramp", info.ramp)),
                growth=float(body.get("growth", info.growth)),
                sensor=body.get("sensor"),
                params={k: float(v) for k, v in (body.get("params") or {}).items()},
                source="inject",
            )
            self.sim.add_fault(spec)
        self._on_change()
        return spec

    def clear(self, body: dict[str, Any]) -> list[FaultSpec]:
        """Repair matching faults now."""
        cleared = self.sim.clear_faults(
            str(body.get("asset", "")), body.get("kind"), body.get("id")
        )
        self._on_change()
        return cleared

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/status":
                    self._reply(200, control.status())
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                    if self.path.rstrip("/") == "/faults":
                        spec = control.inject(body)
                        site = control.sim.assets[spec.asset].site
                        self._reply(201, {"fault": spec.truth_record(site)})
                    elif self.path.rstrip("/") == "/faults/clear":
                        cleared = control.clear(body)
                        self._reply(200, {"cleared": [f.fault_id for f in cleared]})
                    else:
                        self._reply(404, {"error": "not found"})
                except (ValueError, TypeError) as exc:
                    self._reply(400, {"error": str(exc)})

        return Handler


def call(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Client side of the control API (used by ``inject``/``clear``/``status``)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"control URL must be http(s): {url!r}")
    target = url.rstrip("/") + path
    try:
        response = (
            httpx.get(target, timeout=10)
            if body is None
            else httpx.post(target, json=body, timeout=10)
        )
    except httpx.HTTPError as exc:
        raise OSError(f"control API at {url} unreachable: {exc}") from exc
    if response.is_error:
        try:
            detail = response.json().get("error", response.reason_phrase)
        except ValueError:
            detail = response.reason_phrase
        raise RuntimeError(f"control API: {response.status_code} {detail}")
    result: dict[str, Any] = response.json()
    return result
