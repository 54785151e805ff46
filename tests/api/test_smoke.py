"""Basic wiring: health, problem details, assets CRUD."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import Api


def test_health_and_problem_details(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")  # InfluxDB is absent in this fixture
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert "Retry-After" in ready.headers
    missing = api.call("admin", "GET", "/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["type"].startswith("urn:equipmon:problem:")
    wrong = api.call("admin", "PUT", "/api/v1/sites")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    bad = api.call("admin", "POST", "/api/v1/sites", json={"code": ""})
    assert bad.status_code == 422
    assert bad.json()["errors"]
    assert "equipmon_api_request_seconds" in api.client.get("/metrics").text


def test_asset_hierarchy(api: Api, site: dict[str, Any]) -> None:
    area = api.ok(
        "facilities", "POST", "/api/v1/areas", json={"site_id": site["id"], "name": "hall 1"}
    )
    asset = api.ok(
        "facilities",
        "POST",
        "/api/v1/assets",
        json={
            "site_id": site["id"],
            "area_id": area["id"],
            "code": "fan-02",
            "name": "Fan 2",
            "asset_type": "fan",
            "criticality": "low",
            "make": "ACME",
            "installed_on": "2020-01-31",
        },
    )
    assert asset["area_id"] == area["id"]
    dup = api.call("facilities", "POST", "/api/v1/assets", json={**asset, "id": None})
    assert dup.status_code == 422  # extra key 'id' is refused
    clash = api.call(
        "facilities",
        "POST",
        "/api/v1/assets",
        json={"site_id": site["id"], "code": "fan-02", "name": "x", "asset_type": "fan"},
    )
    assert clash.status_code == 409
    page = api.ok("technician", "GET", f"/api/v1/assets?site_id={site['id']}&asset_type=fan")
    assert [a["code"] for a in page["items"]] == ["fan-02"]
    assert page["total"] == 1
    changed = api.ok(
        "facilities", "PATCH", f"/api/v1/assets/{asset['id']}", json={"criticality": "critical"}
    )
    assert changed["criticality"] == "critical"
    sensors = api.ok("technician", "GET", "/api/v1/assets/1/sensors")
    assert {s["name"] for s in sensors["items"]} == {"vibration_rms", "bearing_temp"}
    audit = api.ok("admin", "GET", f"/api/v1/audit?entity=asset&entity_id={asset['id']}")
    assert [e["action"] for e in audit["items"]] == ["update", "create"]
