"""Plain typed factories for API tests: an app with a token per role, sites, assets, alerts."""

from __future__ import annotations

import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from api.settings import PolicySettings, ServerSettings, Settings
from telemetry.influx.settings import InfluxSettings

ROLES = ("admin", "facilities", "technician", "gateway", "service")
# Nothing listens on port 9 (discard): an InfluxDB that is "down" for tests that need none.
NO_INFLUX = InfluxSettings(url="http://127.0.0.1:9", database="none", api="v1", timeout_s=2)


def make_settings(
    database_url: str,
    influx: InfluxSettings | None = None,
    auto_assign: Literal["least_loaded", "none"] = "none",
    **server: Any,
) -> Settings:
    """Settings for a test app: bootstrap admin and service tokens, migrations on start.

    Work orders are not assigned automatically unless asked: most tests walk the manual
    dispatch through its states.
    """
    return Settings(
        database_url=database_url,
        influx=influx or NO_INFLUX,
        admin_token=SecretStr("admin-" + secrets.token_hex(16)),
        service_token=SecretStr("service-" + secrets.token_hex(16)),
        api=ServerSettings(sweep_interval_s=3600, **server),
        policy=PolicySettings(verify_after_s=3600, auto_assign=auto_assign),
    )


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run app in a real uvicorn server on a free port (in a thread); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(timeout=5) as probe:
            for _ in range(500):
                if server.started:
                    break
                if not thread.is_alive():
                    raise RuntimeError("the API server failed to start")
                threading.Event().wait(0.02)
            else:
                raise RuntimeError("the API server did not start within 10 s")
            probe.get(f"http://127.0.0.1:{port}/healthz").raise_for_status()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass
class Api:
    """A test client with a bearer token per role (technician2 is a second technician)."""

    client: httpx.Client
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.settings.admin_token
        assert self.settings.service_token
        self.tokens["admin"] = self.settings.admin_token.get_secret_value()
        self.tokens["service"] = self.settings.service_token.get_secret_value()

    def headers(self, role: str | None, **extra: str) -> dict[str, str]:
        """Authorization for role (none for None), plus extra headers."""
        auth = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return {**auth, **extra}

    def call(self, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
        """A request as role."""
        headers = self.headers(role, **kwargs.pop("headers", {}))
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
        """A request that must succeed; its JSON body (None for 204)."""
        response = self.call(role, method, path, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return None if response.status_code == 204 else response.json()


def setup_roles(api: Api, site_id: int) -> None:
    """Users for facilities and two technicians (logged in), and a gateway token for site_id."""
    for name, role in (
        ("facilities", "facilities"),
        ("technician", "technician"),
        ("technician2", "technician"),
    ):
        password = secrets.token_hex(8)
        user = api.ok(
            "admin",
            "POST",
            "/api/v1/users",
            json={"username": name, "role": role, "password": password},
        )
        api.user_ids[name] = user["id"]
        login = api.ok(
            None, "POST", "/api/v1/auth/login", json={"username": name, "password": password}
        )
        api.tokens[name] = login["token"]
    gateway = api.ok(
        "admin",
        "POST",
        "/api/v1/tokens",
        json={"name": "gw-1", "role": "gateway", "site_id": site_id},
    )
    api.tokens["gateway"] = gateway["token"]


def create_site(api: Api, code: str | None = None) -> dict[str, Any]:
    """A site."""
    code = code or f"site-{uuid.uuid4().hex[:8]}"
    result: dict[str, Any] = api.ok(
        "admin", "POST", "/api/v1/sites", json={"code": code, "name": code}
    )
    return result


def create_asset(
    api: Api, site_id: int, code: str = "pump-01", criticality: str = "high"
) -> dict[str, Any]:
    """An asset with two sensors."""
    asset: dict[str, Any] = api.ok(
        "admin",
        "POST",
        "/api/v1/assets",
        json={
            "site_id": site_id,
            "code": code,
            "name": code,
            "asset_type": "pump",
            "criticality": criticality,
        },
    )
    for name, unit in (("vibration_rms", "mm/s"), ("bearing_temp", "°C")):
        api.ok(
            "admin",
            "POST",
            f"/api/v1/assets/{asset['id']}/sensors",
            json={"name": name, "unit": unit, "min_value": -50, "max_value": 200},
        )
    return asset


def alert_body(
    site: str,
    asset: str,
    *,
    state: str = "active",
    severity: str = "high",
    failure_mode: str = "bearing_wear",
    kind: str = "equipment_anomaly",
    detected_at: str = "2026-11-27T07:00:00Z",
) -> dict[str, Any]:
    """An alert post as the analytics service sends it."""
    return {
        "site": site,
        "asset": asset,
        "kind": kind,
        "failure_mode": failure_mode,
        "state": state,
        "severity": severity,
        "health": 40,
        "score": 7.5,
        "threshold": 5.0,
        "detected_at": detected_at,
        "contributors": [{"sensor": "vibration_rms", "share": 0.8}],
        "message": "vibration rising",
    }
