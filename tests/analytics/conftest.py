"""Fixtures of the analytics tests that need the real API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.main import create_app
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles

SITE, ASSET = "plant-a", "pump-01"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """A real API server with plant-a/pump-01 and a user per role."""
    settings = make_settings(database_url)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, settings)
        site = create_site(harness, SITE)
        setup_roles(harness, site["id"])
        create_asset(harness, site["id"], code=ASSET)
        yield harness
