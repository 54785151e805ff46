"""Every gateway credential writes only its own site (issue 15, defect 2).

A user with role `gateway` could log in and push for any site, and a token issued for that user
with `site_id` of plant-a also wrote plant-b (the binding was dropped for user tokens).
InfluxDB is absent here: a push that passed authorisation and validation answers 503.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.main import create_app
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve

# SQLite only (a token's site is checked before any SQL of the push).
pytestmark = pytest.mark.sql_agnostic

PUSH = "/api/v1/readings"


def _body(site: str, asset: str) -> dict[str, Any]:
    reading = {"asset": asset, "time": time.time_ns(), "sensors": {"vibration_rms": 1.0}}
    return {"site": site, "readings": [reading]}


def _push(api: Api, token: str, site: str, asset: str) -> httpx.Response:
    return api.client.post(
        PUSH, json=_body(site, asset), headers={"Authorization": f"Bearer {token}"}
    )


def test_gateway_user_tokens_write_only_their_site(api: Api, site: dict[str, Any]) -> None:
    other = create_site(api, "plant-b")
    create_asset(api, other["id"], "pump-09")
    password = secrets.token_hex(8)
    user = api.ok(
        "admin",
        "POST",
        "/api/v1/users",
        json={"username": "gw-user", "role": "gateway", "password": password},
    )
    login = api.ok(
        None, "POST", "/api/v1/auth/login", json={"username": "gw-user", "password": password}
    )
    # A login token carries no site: it may write none.
    for target, asset in (("plant-a", "pump-01"), ("plant-b", "pump-09")):
        refused = _push(api, login["token"], target, asset)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    bound = api.ok(
        "admin",
        "POST",
        "/api/v1/tokens",
        json={"name": "gw-user-a", "user_id": user["id"], "site_id": site["id"]},
    )
    assert bound["site_id"] == site["id"]
    other_site = _push(api, bound["token"], "plant-b", "pump-09")
    assert other_site.status_code == 422, other_site.text
    assert other_site.json()["reason"] == "site_mismatch"
    own_site = _push(api, bound["token"], "plant-a", "pump-01")
    assert own_site.status_code == 503, own_site.text  # authorised and valid; no InfluxDB here


def test_bootstrap_gateway_token_needs_its_site(database_url: str) -> None:
    for gateway_site, expected in ((None, 403), ("plant-a", 503)):
        settings = make_settings(database_url).model_copy(
            update={
                "gateway_token": SecretStr("gateway-" + secrets.token_hex(16)),
                "gateway_site": gateway_site,
            }
        )
        with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
            api = Api(client, settings)
            if gateway_site is None:
                created = create_site(api, "plant-a")
                create_asset(api, created["id"])
            assert settings.gateway_token is not None
            token = settings.gateway_token.get_secret_value()
            assert _push(api, token, "plant-a", "pump-01").status_code == expected
            if expected == 503:
                mismatch = _push(api, token, "plant-b", "pump-01")
                assert mismatch.status_code == 422, mismatch.text
                assert mismatch.json()["reason"] == "site_mismatch"
