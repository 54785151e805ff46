"""The /api/v2/write path, checked against InfluxDB 2's documented write API.

No InfluxDB with /api/v2/write installs on this machine (Debian ships 1.6.7), so this is NOT an
InfluxDB test: a local HTTP listener captures the request influxdb-client sends and answers as
InfluxDB 2 documents (204, or a JSON error with code and message), and the tests check the
request's path, org, bucket, precision, token header and body, and how answers are classified.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from telemetry.errors import InfluxFatalError, InfluxRejectedError, InfluxRetryableError
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.fixtures.factories import make_reading


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    url: str
    requests: list[Captured] = field(default_factory=list)
    answer: tuple[int, dict[str, str], bytes] = (204, {}, b"")
    version: str = "v2.7.10"


@pytest.fixture
def listener() -> Iterator[Listener]:
    state = Listener(url="")

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            state.requests.append(
                Captured(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers),
                    self.rfile.read(length),
                )
            )
            status, headers, body = (204, {}, b"") if parts.path == "/ping" else state.answer
            self.send_response(status)
            self.send_header("X-Influxdb-Version", state.version)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _serve  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def v2_client(url: str, **overrides: object) -> InfluxClient:
    settings = InfluxSettings(url=url, org="acme", bucket="telemetry-raw", token="s3cret-token")
    return InfluxClient(settings.model_copy(update=overrides))


def test_write_request_matches_the_v2_write_api(listener: Listener) -> None:
    readings = [
        make_reading(asset="pump 1", time_ns=1_795_000_000_000_000_000 + i) for i in range(3)
    ]
    client = v2_client(listener.url)
    assert client.uses_v2_write()  # decided from /ping's X-Influxdb-Version: v2.7.10
    client.write_readings(readings)
    (ping, write) = listener.requests
    assert ping.path == "/ping"
    assert write.method == "POST"
    assert write.path == "/api/v2/write"
    assert write.query == {"org": ["acme"], "bucket": ["telemetry-raw"], "precision": ["ns"]}
    assert write.headers["Authorization"] == "Token s3cret-token"
    assert write.headers["Content-Type"].startswith("text/plain")
    assert write.body == client.format(readings)
    assert write.body.startswith(b"telemetry,asset=pump\\ 1,site=plant-a ")


def test_bucket_defaults_to_the_v1_mapping_and_1_8_uses_v2(listener: Listener) -> None:
    listener.version = "1.8.10"
    client = InfluxClient(
        InfluxSettings(
            url=listener.url,
            database="equipmon",
            retention_policy="autogen",
            username="u",
            password="p",
        )
    )
    client.write_readings([make_reading()])
    write = listener.requests[-1]
    assert write.query["bucket"] == ["equipmon/autogen"]
    assert write.headers["Authorization"] == "Token u:p"


def test_invalid_data_answer_is_rejected(listener: Listener) -> None:
    listener.answer = (
        400,
        {},
        b'{"code":"invalid","message":"unable to parse \'x\': bad timestamp"}',
    )
    with pytest.raises(InfluxRejectedError) as caught:
        v2_client(listener.url, api="v2").write_readings([make_reading()])
    assert caught.value.server_reason == "unable to parse 'x': bad timestamp"


def test_unauthorized_answer_is_fatal(listener: Listener) -> None:
    listener.answer = (401, {}, b'{"code":"unauthorized","message":"unauthorized access"}')
    with pytest.raises(InfluxFatalError, match="unauthorized access"):
        v2_client(listener.url, api="v2").write_readings([make_reading()])


def test_overloaded_answer_is_retryable_with_retry_after(listener: Listener) -> None:
    listener.answer = (503, {"Retry-After": "12"}, b'{"code":"unavailable","message":"busy"}')
    with pytest.raises(InfluxRetryableError) as caught:
        v2_client(listener.url, api="v2").write_readings([make_reading()])
    assert caught.value.retry_after == 12.0


def test_unreachable_v2_server_is_retryable() -> None:
    with pytest.raises(InfluxRetryableError):
        v2_client("http://127.0.0.1:9", api="v2").write_readings([make_reading()])
