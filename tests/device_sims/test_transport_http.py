"""HTTP push gateway against a local http.server: body, auth, buffering and resend."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from device_sims.engine import Sample
from device_sims.transports.http_push import HttpGateway, retry_after_s

T0 = 1_795_392_000_000_000_000


class Api:
    """A scripted API: answers from a queue of statuses (then 204), records every request."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with api.lock:
                    status = api.script.pop(0) if api.script else 204
                    api.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                        }
                    )
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stored(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _samples(n: int, asset: str = "ahu-01") -> list[Sample]:
    return [Sample("plant-a", asset, T0 + i * 10**9, {"filter_dp": 50.0 + i}) for i in range(n)]


def test_batch_reaches_the_api_with_the_documented_body(api: Api) -> None:
    gw = HttpGateway("gw-1", api.url, "tok-123", batch_size=3)
    gw.start()
    for s in _samples(3):
        gw.send(s)
    assert gw.flush(10)
    gw.close()
    (request,) = api.stored()
    assert request["path"] == "/api/v1/readings"
    assert request["headers"]["Authorization"] == "Bearer tok-123"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "site": "plant-a",
        "precision": "ms",
        "readings": [
            {"asset": "ahu-01", "time": T0 // 10**6 + i * 1000, "sensors": {"filter_dp": 50.0 + i}}
            for i in range(3)
        ],
    }


def test_line_protocol_push_uses_text_plain_and_ns_precision(api: Api) -> None:
    gw = HttpGateway("gw-lp", api.url, "t", fmt="lp", batch_size=2)
    gw.start()
    for s in _samples(2):
        gw.send(s)
    assert gw.flush(10)
    gw.close()
    (request,) = api.stored()
    assert request["path"] == "/api/v1/readings?precision=ns"
    assert request["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert request["body"].decode().splitlines()[1] == (
        f"telemetry,asset=ahu-01,site=plant-a filter_dp=51.0 {T0 + 10**9}"
    )


def test_503_then_204_resends_buffered_batches_oldest_first(api: Api) -> None:
    api.script = [503, 503]
    gw = HttpGateway("gw-2", api.url, "t", batch_size=2)
    gw.start()
    for s in _samples(6):
        gw.send(s)
    assert gw.flush(15)
    gw.close()
    stored = api.stored()
    assert len(stored) == 3
    times = [r["time"] for req in stored for r in json.loads(req["body"])["readings"]]
    assert times == sorted(times)
    assert len(times) == 6
    assert [r["status"] for r in api.requests][:2] == [503, 503]
    assert gw.stats()["retries"] == 2


def test_bad_data_is_dropped_not_retried(api: Api) -> None:
    api.script = [422]
    gw = HttpGateway("gw-3", api.url, "t", batch_size=1)
    gw.start()
    for s in _samples(2):
        gw.send(s)
    assert gw.flush(10)
    gw.close()
    assert [r["status"] for r in api.requests] == [422, 204]
    assert gw.stats()["rejected"] == 1


def test_offline_gateway_buffers_then_delivers_when_the_api_appears() -> None:
    with socket.socket() as probe:  # a free port with nobody listening: the API is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gw = HttpGateway("gw-4", f"http://127.0.0.1:{port}", "t", batch_size=1, buffer_batches=3)
    gw.start()
    for s in _samples(5):
        gw.send(s)  # bounded buffer: the two oldest batches are dropped
    deadline = time.monotonic() + 5
    while gw.stats()["retries"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.stats()["dropped"] == 2
    assert gw.stats()["buffered"] == 3
    late = Api(port)  # the API comes up on its address: the gateway resends on its own
    try:
        assert gw.flush(15), gw.stats()
        times = [json.loads(r["body"])["readings"][0]["time"] for r in late.stored()]
        assert times == [T0 // 10**6 + i * 1000 for i in (2, 3, 4)]  # oldest first
    finally:
        gw.close()
        late.server.shutdown()
        late.server.server_close()


def test_a_keep_alive_connection_the_api_closed_is_reopened_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An API that closes idle keep-alive connections (as uvicorn does after 5 s) without a
    ``Connection: close``: the next push reopens the connection quietly, where it logged "API
    unreachable (Broken pipe)" every time."""
    stored: list[bytes] = []

    class OneRequestPerConnection(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as far as the client can tell

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            stored.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True  # then closed, unannounced (an idle timeout)

    server = ThreadingHTTPServer(("127.0.0.1", 0), OneRequestPerConnection)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gw = HttpGateway("gw-ka", f"http://127.0.0.1:{server.server_address[1]}", "t", batch_size=1)
    gw.start()
    try:
        with caplog.at_level("WARNING", logger="device_sims.transports.http_push"):
            for sample in _samples(3):
                gw.send(sample)
                assert gw.flush(10)
        assert len(stored) == 3
        assert gw.stats()["reconnects"] >= 1
        assert gw.stats()["retries"] == 0
        assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
    finally:
        gw.close()
        server.shutdown()
        server.server_close()


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_s("3", 1.0) == 3.0
    assert retry_after_s(None, 1.5) == 1.5
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 2.0) == 0.0  # in the past
    assert retry_after_s("soon", 2.0) == 2.0
