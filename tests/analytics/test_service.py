"""The live detector service against a real InfluxDB and a real API server (uvicorn, SQLite)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from analytics.service import DetectorService
from analytics.settings import ApiSettings, ServiceSettings
from api.main import create_app
from api.settings import Settings
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading
from tests.analytics.helpers import SENSORS, FloatArray, make_correlated_rows
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve

SITE = "plant-a"
ASSETS = ("pump-a", "pump-b")
BASELINE_S = 600
# The anomaly: the independent "temperature" sensor jumps by 25 noise sd.
PERTURBED = "temperature"
JUMP = 5.0


@dataclass
class Plant:
    """Synthetic 1 Hz data of two assets, written on demand with timestamps in the recent past."""

    client: InfluxClient
    start_ns: int
    rows: dict[str, FloatArray]
    written: int = 0

    def write(self, seconds: int, *, anomalous: str | None = None) -> None:
        """Write the next `seconds` rows of every asset (the anomalous one perturbed)."""
        readings = []
        for asset, values in self.rows.items():
            for k in range(self.written, self.written + seconds):
                row = dict(zip(SENSORS, map(float, values[k]), strict=True))
                if asset == anomalous:
                    row[PERTURBED] += JUMP
                readings.append(Reading(SITE, asset, self.start_ns + k * 1_000_000_000, row))
        self.client.write_readings(readings)
        self.written += seconds


@pytest.fixture
def plant(influx_client: InfluxClient) -> Plant:
    """Two assets whose data starts an hour ago."""
    rows = {asset: make_correlated_rows(1200, seed=i + 1)[0] for i, asset in enumerate(ASSETS)}
    return Plant(influx_client, time.time_ns() - 3600 * 1_000_000_000, rows)


@pytest.fixture
def api_settings(database_url: str) -> Settings:
    """API settings on a fresh database holding site plant-a and assets pump-a, pump-b."""
    settings = make_settings(database_url)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, SITE)
        for asset in ASSETS:
            create_asset(api, site["id"], code=asset)
    return settings


@contextmanager
def serve_on(app: FastAPI, sock: socket.socket) -> Iterator[None]:
    """Run app in uvicorn on an already bound socket (nothing listens on it before)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the API server failed to start"
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(30)


def service_settings(
    influx: InfluxSettings, api: Settings, url: str, data_dir: Path
) -> ServiceSettings:
    """Service settings for tests: 300 s baseline, fast retries, an ephemeral HTTP port."""
    assert api.service_token is not None
    return ServiceSettings(
        influx=influx,
        api=ApiSettings(url=url, timeout_s=5, retry_min_s=0.05, retry_max_s=0.5),
        service_token=api.service_token,
        train_after_s=300,
        lookback_s=7200,
        http_port=0,
        data_dir=data_dir,
    )


def alerts(api: Api) -> list[dict[str, Any]]:
    """Every alert the API holds."""
    items: list[dict[str, Any]] = api.ok("admin", "GET", "/api/v1/alerts?limit=100")["items"]
    return items


def asset_id(api: Api, code: str) -> int:
    """The id of the asset `code`."""
    found: int = api.ok("admin", "GET", f"/api/v1/assets?code={code}")["items"][0]["id"]
    return found


def test_alert_is_raised_for_the_faulty_asset_and_cleared(
    plant: Plant, influx_settings: InfluxSettings, api_settings: Settings, tmp_path: Path
) -> None:
    with (
        serve(create_app(api_settings)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        DetectorService(service_settings(influx_settings, api_settings, url, tmp_path)) as service,
    ):
        api = Api(http, api_settings)
        service.start()
        plant.write(BASELINE_S)
        assert service.tick() == BASELINE_S * len(ASSETS)
        assert all(m.scorer is not None for m in service.assets.values())
        assert service.outbox.wait_empty(30)
        assert alerts(api) == []

        plant.write(90, anomalous="pump-a")
        service.tick()
        assert service.outbox.wait_empty(30)
        found = alerts(api)
        assert len(found) == 1, found
        alert = found[0]
        assert alert["asset_id"] == asset_id(api, "pump-a")
        assert (alert["kind"], alert["failure_mode"]) == ("equipment_anomaly", "anomaly")
        assert alert["condition_active"] is True
        assert alert["state"] == "active_unacknowledged"
        assert alert["contributors"][0]["sensor"] == PERTURBED
        assert alert["score"] > alert["threshold"]

        plant.write(240)
        service.tick()
        assert service.outbox.wait_empty(30)
        found = alerts(api)
        assert len(found) == 1, found
        assert found[0]["condition_active"] is False
        assert found[0]["state"] == "rtn_unacknowledged"

        assert service.http_port
        metrics = httpx.get(f"http://127.0.0.1:{service.http_port}/metrics").text
        assert "equipmon_analytics_alarm_transitions_total" in metrics
        health = httpx.get(f"http://127.0.0.1:{service.http_port}/healthz")
        assert health.status_code == 200
        assert health.json()["assets"] == len(ASSETS)


def test_scoring_goes_on_while_the_api_is_down_and_the_alert_arrives_later(
    plant: Plant, influx_settings: InfluxSettings, api_settings: Settings, tmp_path: Path
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        settings = service_settings(influx_settings, api_settings, url, tmp_path)
        with DetectorService(settings) as service:
            service.start(http=False)
            plant.write(BASELINE_S)
            service.tick()
            plant.write(90, anomalous="pump-a")
            service.tick()
            assert service.assets[(SITE, "pump-a")].alarm
            assert not service.assets[(SITE, "pump-b")].alarm
            assert not service.outbox.wait_empty(0.5)
            assert service.outbox.pending() == 1
            assert service.metrics.registry.get_sample_value(
                "equipmon_analytics_alert_posts_total", {"outcome": "retry"}
            )

            with serve_on(create_app(api_settings), sock), httpx.Client(base_url=url) as http:
                assert service.outbox.wait_empty(30)
                found = alerts(Api(http, api_settings))
                assert len(found) == 1, found
                assert found[0]["asset_id"] == asset_id(Api(http, api_settings), "pump-a")
                assert found[0]["condition_active"] is True
                assert found[0]["contributors"][0]["sensor"] == PERTURBED
    finally:
        sock.close()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUIPMON_ANALYTICS__API__URL", "http://api.example:8080/")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SERVICE_TOKEN", "service-0123456789abcdef")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__INFLUX__URL", "http://influx.example:8086")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__TICK_S", "5")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__HTTP_PORT", "0")
    settings = ServiceSettings()
    assert settings.api.url == "http://api.example:8080"
    assert settings.service_token is not None
    assert settings.service_token.get_secret_value() == "service-0123456789abcdef"
    assert settings.influx.url == "http://influx.example:8086"
    assert (settings.tick_s, settings.http_port, settings.train_after_s) == (5, 0, 3600)
    assert settings.effective_lookback_s == 3605
