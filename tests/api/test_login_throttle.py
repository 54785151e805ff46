"""Login throttling per user name and per client address (issue 15, defect 4).

40 wrong passwords in 2 s all answered 401 and the right one worked right after. The app's
clock is injected: the tests move it instead of waiting.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import Api, create_site, make_settings, serve

LOGIN = "/api/v1/auth/login"
UI_LOGIN = "/ui/login"


@dataclass
class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    api: Api
    clock: FakeClock
    password: str


@pytest.fixture
def throttled(database_url: str) -> Iterator[Harness]:
    """An app with the default per-name allowance (5) and 8 failures per address."""
    clock = FakeClock()
    settings = make_settings(database_url, login_free_failures_per_address=8)
    app = create_app(settings, clock=clock)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        create_site(api, "plant-a")
        password = secrets.token_hex(8)
        api.ok(
            "admin",
            "POST",
            "/api/v1/users",
            json={"username": "ana", "role": "facilities", "password": password},
        )
        yield Harness(api, clock, password)


def _login(h: Harness, username: str, password: str, address: str = "10.0.0.1") -> httpx.Response:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a local proxy): it is the client address.
    return h.api.client.post(
        LOGIN,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


def _answers(
    h: Harness, username: str, count: int, address: str = "10.0.0.1"
) -> list[tuple[int, str | None, str]]:
    result = []
    for _ in range(count):
        response = _login(h, username, "wrong-password", address)
        result.append(
            (response.status_code, response.headers.get("Retry-After"), response.json()["detail"])
        )
    return result


def test_wrong_passwords_lock_the_name_out_with_growing_delays(throttled: Harness) -> None:
    h = throttled
    assert [status for status, _, _ in _answers(h, "ana", 6)] == [401] * 6
    locked = _login(h, "ana", h.password)  # the right password does not help now
    assert locked.status_code == 429, locked.text
    assert locked.headers["Retry-After"] == "2"
    assert locked.headers["content-type"] == "application/problem+json"
    h.clock.now += 2.5
    assert _login(h, "ana", "wrong-password").status_code == 401  # the 7th: locks for 4 s
    assert _login(h, "ana", h.password).headers.get("Retry-After") == "4"
    h.clock.now += 4.5
    assert _login(h, "ana", h.password).status_code == 200
    # Success forgives the name: the next mistake is free again.
    assert _login(h, "ana", "wrong-password").status_code == 401
    assert _login(h, "ana", h.password).status_code == 200


def test_unknown_and_existing_names_are_throttled_alike(throttled: Harness) -> None:
    h = throttled
    assert _answers(h, "ana", 8, "10.0.0.2") == _answers(h, "nobody-here", 8, "10.0.0.3")


def test_an_address_is_throttled_across_names(throttled: Harness) -> None:
    h = throttled
    for index in range(9):  # 8 free failures per address, each under another name
        assert _login(h, f"guess-{index}", "wrong-password", "10.0.0.9").status_code == 401
    assert _login(h, "ana", h.password, "10.0.0.9").status_code == 429
    assert _login(h, "ana", h.password, "10.0.0.10").status_code == 200  # another address


def test_lockouts_are_audited(throttled: Harness) -> None:
    h = throttled
    _answers(h, "ana", 6)
    entries: list[dict[str, Any]] = h.api.ok("admin", "GET", "/api/v1/audit?entity=login")["items"]
    lockouts = [e for e in entries if e["action"] == "lockout"]
    assert lockouts, entries
    assert lockouts[0]["changes"]["user"] == "ana"
    assert lockouts[0]["changes"]["seconds"] == 2.0


def test_the_ui_login_shares_the_throttle(throttled: Harness) -> None:
    h = throttled
    for _ in range(6):
        form = {"username": "ana", "password": "wrong-password"}
        assert h.api.client.post(UI_LOGIN, data=form).status_code == 401
    locked = h.api.client.post(UI_LOGIN, data={"username": "ana", "password": h.password})
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "2"
    assert _login(h, "ana", h.password, "testclient").status_code == 429  # and the API's
    h.clock.now += 3
    ok = h.api.client.post(UI_LOGIN, data={"username": "ana", "password": h.password})
    assert ok.status_code == 303, ok.text
