"""Helpers of the notification tests: a compressed-time app, a chat receiver, the rota, mail."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from api.main import create_app
from api.settings import NotifySettings, Settings, SmtpSettings
from stack.smtp_sink import SmtpSink
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles

T = TypeVar("T")
PUBLIC = "http://equipmon.test"
LINK = re.compile(re.escape(PUBLIC) + r"(/api/v1/action-links/[a-z-]+/[0-9A-Za-z._-]+)")
EMAIL = {
    "facilities": "fm@plant.test",
    "technician": "tech@plant.test",
    "technician2": "lead@plant.test",
}


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll probe until it returns something truthy (or fail after timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def notify_settings(database_url: str, smtp_port: int, **notify: Any) -> Settings:
    """App settings whose notifier polls every 50 ms, with time compressed as asked."""
    settings = make_settings(database_url)
    values: dict[str, Any] = {
        "poll_interval_s": 0.05,
        "minute_s": 0.5,
        "flood_window_s": 0.01,
        "backoff_s": 0.05,
        "backoff_max_s": 0.2,
        "max_attempts": 3,
        "public_url": PUBLIC,
        "link_secret": SecretStr("link-secret-" + "k" * 20),
        "smtp": SmtpSettings(port=smtp_port, from_address="equipmon@plant.test", timeout_s=5),
    } | notify
    settings.notify = NotifySettings(**values)
    return settings


@contextmanager
def running(settings: Settings, api: Api | None = None) -> Iterator[Api]:
    """An app on settings' database; with api, the same tokens (a restart), else set up anew."""
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, settings)
        if api is None:
            site = create_site(harness, "plant-a")
            setup_roles(harness, site["id"])
            create_asset(harness, site["id"])
        else:
            harness.tokens, harness.user_ids = api.tokens, api.user_ids
        yield harness


def site_id(api: Api) -> int:
    """The id of plant-a."""
    return int(api.ok("admin", "GET", "/api/v1/sites?code=plant-a")["items"][0]["id"])


def rota(api: Api) -> None:
    """E-mail for everyone; plant-a's rota all week: technician, technician2 (lead), facilities."""
    sid = site_id(api)
    for name, address in EMAIL.items():
        body = {"channels": ["email"], "email": address}
        api.ok(
            "admin", "PUT", f"/api/v1/users/{api.user_ids[name]}/notification-settings", json=body
        )
    for level, name in ((1, "technician"), (2, "technician2"), (3, "facilities")):
        for day in range(7):
            shift = {"site_id": sid, "level": level, "user_id": api.user_ids[name],
                     "weekday": day, "starts": "00:00", "ends": "00:00"}  # fmt: skip
            api.ok("facilities", "POST", "/api/v1/on-call/shifts", json=shift)


def rule(api: Api, event: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A notification rule of plant-a."""
    body = {"name": f"{event} rule", "site_id": site_id(api), "event": event, "steps": steps}
    result: dict[str, Any] = api.ok(
        "facilities", "POST", "/api/v1/notification-rules", json=body | extra
    )
    return result


def mail_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    """Messages the sink received for address."""
    return [m for m in sink.messages() if address in str(m["X-Envelope-To"])]


def text_of(mail: EmailMessage) -> str:
    """The plain-text part of a notification mail."""
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_path(text: str) -> str:
    """The action link's path in a message."""
    found = LINK.search(text)
    assert found, text
    return found.group(1)


def history(api: Api, alert_id: int) -> list[dict[str, Any]]:
    """The alert's history entries."""
    items: list[dict[str, Any]] = api.ok("admin", "GET", f"/api/v1/alerts/{alert_id}/history")[
        "items"
    ]
    return items


def outbox(api: Api, **query: Any) -> list[dict[str, Any]]:
    """The admin's view of the outbox."""
    items: list[dict[str, Any]] = api.ok(
        "admin", "GET", "/api/v1/notifications", params={"limit": 500} | query
    )["items"]
    return items


@dataclass
class ChatReceiver:
    """A local HTTP endpoint for chat webhooks: records (path, headers, JSON), answers like each
    service does (Telegram {"ok": true}, Zalo {"error": 0}, the others 200)."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    def posted(self, prefix: str) -> list[tuple[str, dict[str, str], Any]]:
        return [r for r in self.requests if r[0].startswith(prefix)]


@contextmanager
def chat_receiver() -> Iterator[ChatReceiver]:
    """Run a ChatReceiver on a free port."""
    state = ChatReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if "/sendMessage" in self.path:
                answer = {"ok": True, "result": {"message_id": len(state.requests)}}
            elif self.path.startswith("/zalo"):
                answer = {"error": 0, "message": "Success", "data": {"message_id": "m1"}}
            else:
                answer = {}
            raw = json.dumps(answer).encode() if answer else b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
