"""Hostile single fields on POST /api/v1/readings are 422 problems, never 500 (issue 15, defect 3).

Each of these answered 500 before: the codecs let a Python ValueError or OverflowError out. And
after any 500 the server dropped the keep-alive connection without saying so.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import Api, make_settings, serve

# SQLite only (readings go to InfluxDB; SQL holds only the gateway's token).
pytestmark = pytest.mark.sql_agnostic

PUSH = "/api/v1/readings"


def _json(time_value: object, value: str = "1.5", precision: str = "ns") -> str:
    record = (
        f'{{"asset": "pump-01", "time": {json.dumps(time_value)}, "sensors": {{"t": {value}}}}}'
    )
    return f'{{"site": "plant-a", "precision": "{precision}", "readings": [{record}]}}'


NOW_S = int(time.time())
# (body, content type, expected reason, expected where)
HOSTILE: dict[str, tuple[str, str, str, str]] = {
    "year zero": (
        _json("0000-01-01T00:00:00Z"),
        "application/json",
        "bad_time",
        "readings[0].time",
    ),
    "1e300 seconds": (
        _json(1e300, precision="s"),
        "application/json",
        "time_out_of_range",
        "readings[0].time",
    ),
    "4,400-digit value": (
        _json(NOW_S, value="7" * 4400, precision="s"),
        "application/json",
        "non_finite",
        "readings[0].sensors.t",
    ),
    "5,000-digit LP timestamp": (
        "telemetry,site=plant-a,asset=pump-01 t=1.5 " + "9" * 5000,
        "text/plain",
        "time_out_of_range",
        "line 1, column 44",
    ),
    "400-digit LP integer": (
        f"telemetry,site=plant-a,asset=pump-01 t={'9' * 400}i {NOW_S}",
        "text/plain",
        "non_finite",
        "line 1, column 40",
    ),
    "31 February": (
        _json("2026-02-31T00:00:00Z"),
        "application/json",
        "bad_time",
        "readings[0].time",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_field_is_a_422_problem(api: Api, case: str) -> None:
    body, media, reason, where = HOSTILE[case]
    url = f"{PUSH}?precision=s" if media == "text/plain" else PUSH
    response = api.call("gateway", "POST", url, content=body, headers={"Content-Type": media})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert (problem["reason"], problem["where"]) == (reason, where), problem
    assert problem["type"] == "urn:equipmon:problem:invalid-request"


def _exchange(sock: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 request on an open connection; the answer's head, b'' if it closed."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head


def test_a_500_keeps_the_connection_usable(database_url: str) -> None:
    """An unexpected error is a 500 problem, and the next request on the connection works."""
    app = create_app(make_settings(database_url))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-boom", boom)
    with serve(app) as url:
        boom_answer = httpx.get(f"{url}/test-boom", timeout=30)  # httpx's default 5 s flaked
        assert boom_answer.headers["content-type"] == "application/problem+json"
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            first = _exchange(sock, "/test-boom")
            assert first.startswith(b"HTTP/1.1 500"), first
            assert b"connection: close" not in first.lower()
            second = _exchange(sock, "/healthz")
            assert second.startswith(b"HTTP/1.1 200"), second
