"""Gateway push against a real InfluxDB: all-or-nothing, 2xx only when stored, 503 when down."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from api.main import create_app
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles
from tests.fixtures.services import Service

# SQLite only (readings go to InfluxDB; SQL holds only the gateway's token).
pytestmark = pytest.mark.sql_agnostic

PUSH = "/api/v1/readings"


def batch(start_ns: int, count: int, asset: str = "pump-01") -> dict[str, object]:
    return {
        "site": "plant-a",
        "readings": [
            {
                "asset": asset,
                "time": start_ns + i,
                "sensors": {"vibration_rms": float(i), "bearing_temp": 40.0},
            }
            for i in range(count)
        ],
    }


def test_push_json_and_line_protocol(influx_api: Api, influx_client: InfluxClient) -> None:
    now = time.time_ns()
    ok = influx_api.call("gateway", "POST", PUSH, json=batch(now, 1000))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"written": 1000}
    lp = f"telemetry,site=plant-a,asset=fan-02 current=11.5 {now // 1_000_000}\n"
    ok_lp = influx_api.call(
        "gateway",
        "POST",
        f"{PUSH}?precision=ms",
        content=lp,
        headers={"Content-Type": "text/plain"},
    )
    assert ok_lp.status_code == 200, ok_lp.text
    stored = influx_client.read_readings(site="plant-a")
    assert len(stored) == 1001
    chart = influx_api.ok(
        "technician",
        "GET",
        "/api/v1/assets/1/readings",
        params={"sensors": "vibration_rms", "points": 10},
    )
    assert chart["sensors"]["vibration_rms"]
    assert chart["interval_s"] >= 1


def test_bad_record_rejects_the_whole_batch(influx_api: Api, influx_client: InfluxClient) -> None:
    body = batch(time.time_ns(), 10)
    body["readings"][7]["sensors"] = {"vibration_rms": "high"}  # type: ignore[index]
    response = influx_api.call("gateway", "POST", PUSH, json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["where"].startswith("readings[7]")
    assert problem["reason"] == "wrong_type"
    unknown = batch(time.time_ns(), 3)
    unknown["readings"][2]["asset"] = "ghost"  # type: ignore[index]
    response = influx_api.call("gateway", "POST", PUSH, json=unknown)
    assert response.status_code == 422
    assert response.json()["where"] == "readings[2]"
    foreign = {**batch(time.time_ns(), 1), "site": "plant-b"}
    assert influx_api.call("gateway", "POST", PUSH, json=foreign).status_code == 422
    lp = (
        "telemetry,site=plant-a,asset=pump-01 t=1 1\n"
        "telemetry,site=plant-a,asset=pump-01 t=oops 2\n"
    )
    bad_lp = influx_api.call(
        "gateway", "POST", PUSH, content=lp, headers={"Content-Type": "text/plain"}
    )
    assert bad_lp.status_code == 422
    assert "line 2" in bad_lp.json()["where"]
    assert influx_client.read_readings(site="plant-a") == []
    assert influx_api.call("service", "POST", PUSH, json=batch(1, 1)).status_code == 403


def test_influx_down_means_503_and_nothing_acknowledged(
    influx_api: Api, influxdb: Service, influx_client: InfluxClient
) -> None:
    acknowledged: list[int] = []
    now = time.time_ns()
    for i in range(5):
        r = influx_api.call("gateway", "POST", PUSH, json=batch(now + i * 1000, 100))
        assert r.status_code == 200
        acknowledged.append(i)
    influxdb.stop()
    try:
        for i in range(5, 10):
            r = influx_api.call("gateway", "POST", PUSH, json=batch(now + i * 1000, 100))
            assert r.status_code == 503
            assert int(r.headers["Retry-After"]) >= 1
    finally:
        influxdb.start()
    r = influx_api.call("gateway", "POST", PUSH, json=batch(now + 10 * 1000, 100))
    assert r.status_code == 200
    acknowledged.append(10)
    stored = {reading.time_ns for reading in influx_client.read_readings(site="plant-a")}
    expected = {now + i * 1000 + j for i in acknowledged for j in range(100)}
    assert expected <= stored


def test_body_limit_and_rate_limit(database_url: str, influx_settings: InfluxSettings) -> None:
    settings = make_settings(
        database_url, influx_settings, max_body_bytes=2048, gateway_burst=2, gateway_rate_per_s=0.01
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        create_asset(api, site["id"])
        big = json.dumps(batch(time.time_ns(), 100))
        too_big = api.call(
            "gateway", "POST", PUSH, content=big, headers={"Content-Type": "application/json"}
        )
        assert too_big.status_code == 413
        assert api.call("gateway", "POST", PUSH, json=batch(time.time_ns(), 1)).status_code == 200
        limited = api.call("gateway", "POST", PUSH, json=batch(time.time_ns(), 1))
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
