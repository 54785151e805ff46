"""Webhooks: signed deliveries to a real local receiver, retries with backoff, failure, secrecy."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import (
    Api,
    alert_body,
    create_asset,
    create_site,
    make_settings,
    serve,
    setup_roles,
)

HOOKS = "/api/v1/webhooks"
SECRET = "s3cret-" + "x" * 24


@dataclass
class Receiver:
    """A local HTTP endpoint that records requests and answers the queued statuses (then 204)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def wait(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.requests) >= count, self.requests


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fast(database_url: str) -> Iterator[Api]:
    """The usual app, but polling deliveries every 50 ms with 50 ms backoff and 3 attempts."""
    settings = make_settings(
        database_url,
        webhook_poll_interval_s=0.05,
        webhook_backoff_s=0.05,
        webhook_max_attempts=3,
        webhook_timeout_s=2,
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, settings)
        site = create_site(harness, "plant-a")
        setup_roles(harness, site["id"])
        create_asset(harness, site["id"])
        yield harness


def subscribe(api: Api, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"url": url, "events": events or ["alert.opened"], "secret": SECRET}
    hook: dict[str, Any] = api.ok("admin", "POST", HOOKS, json=body)
    return hook


def deliveries(
    api: Api, hook_id: int, settled: bool = True, count: int = 0
) -> list[dict[str, Any]]:
    """The hook's deliveries; with settled, wait until there are count and none is pending."""
    deadline = time.monotonic() + 15
    while True:
        items: list[dict[str, Any]] = api.ok("admin", "GET", f"{HOOKS}/{hook_id}/deliveries")[
            "items"
        ]
        if (
            not settled
            or (len(items) >= count and all(d["status"] != "pending" for d in items))
            or time.monotonic() > deadline
        ):
            return items
        time.sleep(0.05)


def test_signed_delivery_of_a_new_alert(fast: Api, receiver: Receiver) -> None:
    hook = subscribe(fast, receiver.url, ["alert.opened", "work_order.created"])
    alert = fast.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    receiver.wait(2)
    events = {}
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-equipmon-signature"], expected)
        assert headers["content-type"] == "application/json"
        payload = json.loads(body)
        assert set(payload) == {"event", "id", "occurred_at", "data"}
        assert headers["x-equipmon-event"] == payload["event"]
        events[payload["event"]] = (headers, payload)
    assert set(events) == {"alert.opened", "work_order.created"}
    headers, payload = events["alert.opened"]
    assert payload["data"]["id"] == alert["id"]
    assert payload["data"]["state"] == "active_unacknowledged"
    assert events["work_order.created"][1]["data"]["id"] == alert["work_order_id"]
    items = deliveries(fast, hook["id"])
    assert {d["status"] for d in items} == {"delivered"}
    assert {str(d["id"]) for d in items} == {h["x-equipmon-delivery"] for h, _ in receiver.requests}
    assert all(d["attempts"] == 1 and d["last_status_code"] == 204 for d in items)


def test_unsubscribed_events_and_inactive_hooks_send_nothing(fast: Api, receiver: Receiver) -> None:
    hook = subscribe(fast, receiver.url, ["alert.cleared"])
    inactive = {"url": receiver.url, "events": ["alert.opened"], "secret": SECRET, "active": False}
    other = fast.ok("admin", "POST", HOOKS, json=inactive)
    fast.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    assert deliveries(fast, hook["id"]) == []
    assert deliveries(fast, other["id"]) == []
    cleared = alert_body("plant-a", "pump-01", state="normal", detected_at="2026-11-27T07:05:00Z")
    fast.ok("service", "POST", "/api/v1/alerts", json=cleared)
    receiver.wait(1)
    assert json.loads(receiver.requests[0][1])["event"] == "alert.cleared"


def test_retries_with_backoff_until_delivered(fast: Api, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    hook = subscribe(fast, receiver.url)
    fast.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    receiver.wait(3)
    (delivery,) = deliveries(fast, hook["id"])
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] == 204
    assert len({h["x-equipmon-delivery"] for h, _ in receiver.requests}) == 1
    assert len({body for _, body in receiver.requests}) == 1  # the same signed body each time


def test_unreachable_url_fails_after_bounded_attempts(fast: Api) -> None:
    hook = subscribe(fast, "http://127.0.0.1:9/nowhere")  # nothing listens on port 9
    fast.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    (delivery,) = deliveries(fast, hook["id"], count=1)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] is None
    assert delivery["last_error"]


def test_crud_never_returns_the_secret(api: Api) -> None:
    created = api.call(
        "admin",
        "POST",
        HOOKS,
        json={"url": "https://example.test/h", "events": ["work_order.updated"], "secret": SECRET},
    )
    assert created.status_code == 201
    hook = created.json()
    assert "secret" not in hook
    assert hook["active"] is True
    texts = [created.text]
    texts.append(api.call("admin", "GET", HOOKS).text)
    texts.append(api.call("admin", "GET", f"{HOOKS}/{hook['id']}").text)
    texts.append(api.call("admin", "GET", f"{HOOKS}/{hook['id']}/deliveries").text)
    texts.append(api.call("admin", "GET", "/api/v1/audit").text)
    assert all(SECRET not in text for text in texts)
    assert api.call("admin", "DELETE", f"{HOOKS}/{hook['id']}").status_code == 204
    assert api.call("admin", "GET", f"{HOOKS}/{hook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"url": "ftp://example.test/h", "events": ["alert.opened"], "secret": SECRET}, "url"),
        ({"url": "file:///etc/passwd", "events": ["alert.opened"], "secret": SECRET}, "url"),
        ({"url": "https://example.test", "events": ["alert.nope"], "secret": SECRET}, "events"),
        ({"url": "https://example.test", "events": [], "secret": SECRET}, "events"),
        ({"url": "https://example.test", "events": ["alert.opened"], "secret": "short"}, "secret"),
    ],
)
def test_invalid_subscriptions(api: Api, body: dict[str, Any], where: str) -> None:
    response = api.call("admin", "POST", HOOKS, json=body)
    assert response.status_code == 422
    assert where in response.text
    assert SECRET not in response.text
    assert "short" not in response.text.replace("too short", "")  # no input echoed
