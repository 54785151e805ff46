"""Fixtures of the API tests: an app on a fresh SQL database with a token for every role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from stack.smtp_sink import SmtpSink
from telemetry.influx.settings import InfluxSettings
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The app (InfluxDB absent), a site `plant-a` with asset `pump-01`, a token per role."""
    settings = make_settings(database_url)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, settings)
        site = create_site(harness, "plant-a")
        setup_roles(harness, site["id"])
        create_asset(harness, site["id"])
        yield harness


@pytest.fixture
def influx_api(database_url: str, influx_settings: InfluxSettings) -> Iterator[Api]:
    """The app writing to this test's InfluxDB database: pump-01 and fan-02 in plant-a, pump-09
    in plant-b."""
    settings = make_settings(database_url, influx_settings, gateway_burst=1000)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        create_asset(api, site["id"], "pump-01")
        create_asset(api, site["id"], "fan-02")
        other = create_site(api, "plant-b")
        create_asset(api, other["id"], "pump-09")
        yield api


@pytest.fixture
def site(api: Api) -> dict[str, Any]:
    """The site `plant-a`."""
    result: dict[str, Any] = api.ok("admin", "GET", "/api/v1/sites?code=plant-a")["items"][0]
    return result


@pytest.fixture
def asset(api: Api) -> dict[str, Any]:
    """The asset `pump-01` of `plant-a`."""
    result: dict[str, Any] = api.ok("admin", "GET", "/api/v1/assets?code=pump-01")["items"][0]
    return result


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real SMTP server process (aiosmtpd) on a free port, keeping what it receives."""
    sink = SmtpSink(tmp_path / "smtp")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
