"""The API with several worker processes on PostgreSQL: nothing that must be shared lives in
one process (issue 20). A real `python -m api serve --workers 2` is started; each request goes
over a new connection, so the kernel hands them to either worker, and the JSON log says which
one (its `pid`) answered. Login lockouts and idempotency keys must hold across both."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

START_TIMEOUT_S = 60.0
# Requests until both workers have answered; the kernel's choice is not round-robin, but the
# chance that 60 new connections all reach one of two waiting workers is negligible.
MAX_TRIES = 60


@dataclass
class Server:
    url: str
    admin: dict[str, str]
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def two_workers(
    postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`python -m api serve --workers 2` on a fresh PostgreSQL database (several workers are for
    PostgreSQL: SQLite's writers are one process). Shared by the module's tests, which count
    log lines of different routes: three processes take half a minute to start here."""
    tmp_path = tmp_path_factory.mktemp("two-workers")
    port = _free_port()
    admin = f"admin-{secrets.token_hex(16)}"
    env = {
        **os.environ,
        "DATABASE_URL": postgres_database_url,
        "EQUIPMON_API__SERVER__HOST": "127.0.0.1",
        "EQUIPMON_API__SERVER__PORT": str(port),
        "EQUIPMON_API__ADMIN_TOKEN": admin,
        "EQUIPMON_API__SERVER__LOGIN_FREE_FAILURES": "3",
        # Long enough that the lockout outlasts the test on a slow machine.
        "EQUIPMON_API__SERVER__LOGIN_LOCKOUT_S": "600",
        "EQUIPMON_API__SERVER__SWEEP_INTERVAL_S": "3600",
        "EQUIPMON_API__INFLUX__URL": "http://127.0.0.1:9",
        "EQUIPMON_API__INFLUX__API": "v1",
    }
    log = tmp_path / "api.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while len(_started_workers(log)) < 2 or not _healthy(url):
                if process.poll() is not None:
                    raise AssertionError(f"the API exited:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"2 workers did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            yield Server(url, {"Authorization": f"Bearer {admin}"}, log)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    return False


def _log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


def _started_workers(log: Path) -> set[int]:
    return {
        line["pid"]
        for line in _log_lines(log)
        if str(line.get("message", "")).startswith("Application startup complete")
    }


def _served_by(log: Path, method: str, path: str, count: int) -> list[int]:
    """The pids of the first `count` access-log lines of method and path (waits for them)."""
    deadline = time.monotonic() + 10
    while True:
        pids = [
            line["pid"]
            for line in _log_lines(log)
            if line.get("logger") == "api.access"
            and line.get("method") == method
            and line.get("path") == path
        ]
        if len(pids) >= count:
            return pids[:count]
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} log lines of {method} {path} expected, got {pids}")
        time.sleep(0.05)


def _fresh(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    # A new connection each time: either worker may accept it.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.request(method, path, **kwargs)


def test_a_login_lockout_holds_in_every_worker(two_workers: Server) -> None:
    server = two_workers
    password = secrets.token_hex(8)
    user = {"username": "ana", "role": "facilities", "password": password}
    _fresh(server, "POST", "/api/v1/users", json=user, headers=server.admin).raise_for_status()
    login = "/api/v1/auth/login"
    wrong = {"username": "ana", "password": "wrong-password"}
    # 3 free failures, the 4th locks the name: counted together, whichever worker took them.
    answers = [_fresh(server, "POST", login, json=wrong).status_code for _ in range(4)]
    assert answers == [401] * 4
    right = {"username": "ana", "password": password}
    statuses = []
    for n in range(5, 5 + MAX_TRIES):
        statuses.append(_fresh(server, "POST", login, json=right).status_code)
        if len(set(_served_by(server.log, "POST", login, n)[4:])) == 2:
            break
    assert set(statuses) == {429}, statuses
    pids = _served_by(server.log, "POST", login, 4 + len(statuses))
    assert len(set(pids[4:])) == 2, f"one worker answered every request: {pids}"


def test_an_idempotency_key_holds_in_every_worker(two_workers: Server) -> None:
    server = two_workers
    site = _fresh(
        server, "POST", "/api/v1/sites", json={"code": "plant-a", "name": "A"}, headers=server.admin
    ).json()
    asset = _fresh(
        server,
        "POST",
        "/api/v1/assets",
        json={"site_id": site["id"], "code": "pump-01", "name": "P", "asset_type": "pump"},
        headers=server.admin,
    ).json()
    body = {"asset_id": asset["id"], "title": "Replace the seal"}
    headers = {**server.admin, "Idempotency-Key": "order-42"}
    path = "/api/v1/work-orders"
    answers = []
    for n in range(1, 1 + MAX_TRIES):
        response = _fresh(server, "POST", path, json=body, headers=headers)
        answers.append((response.status_code, response.json()["id"]))
        if n > 1 and len(set(_served_by(server.log, "POST", path, n))) == 2:
            break
    assert len(set(_served_by(server.log, "POST", path, len(answers)))) == 2
    first_id = answers[0][1]
    assert answers[0][0] == 201
    assert answers[1:] == [(200, first_id)] * (len(answers) - 1)
    listed = _fresh(server, "GET", path, headers=server.admin).json()
    assert listed["total"] == 1
