"""Reports: the alarm KPIs and reliability of a site by code, the same figures as elsewhere."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import Api, alert_body, create_asset

REPORTS = "/api/v1/reports"
WINDOW = {"since": "2026-11-27T00:00:00Z", "until": "2026-11-28T00:00:00Z"}


def test_alarm_kpis_match_the_alert_kpis(api: Api, site: dict[str, Any]) -> None:
    for minute in range(3):
        at = f"2026-11-27T07:0{2 * minute}:00Z"
        api.ok(
            "service",
            "POST",
            "/api/v1/alerts",
            json=alert_body("plant-a", "pump-01", detected_at=at),
        )
        normal = alert_body(
            "plant-a", "pump-01", state="normal", detected_at=f"2026-11-27T07:0{2 * minute + 1}:00Z"
        )
        api.ok("service", "POST", "/api/v1/alerts", json=normal)
    report = api.ok(
        "facilities", "GET", f"{REPORTS}/alarm-kpis", params={"site": "plant-a", **WINDOW}
    )
    direct = api.ok(
        "facilities",
        "GET",
        "/api/v1/alerts/kpis",
        params={"site_id": site["id"], "start": WINDOW["since"], "end": WINDOW["until"]},
    )
    assert report == direct
    assert report["activations"] == 3
    assert report["site_id"] == site["id"]


def test_reliability_lists_every_asset_of_the_site(api: Api, site: dict[str, Any]) -> None:
    second = create_asset(api, site["id"], code="fan-02")
    report = api.ok("admin", "GET", f"{REPORTS}/reliability", params={"site": "plant-a"})
    assert report["site"] == "plant-a"
    assert report["site_id"] == site["id"]
    assert report["assets"][0]["asset_id"] == second["id"]  # ordered by code
    assert len(report["assets"]) == 2
    direct = api.ok(
        "admin",
        "GET",
        f"/api/v1/assets/{second['id']}/reliability",
        params={"start": report["start"], "end": report["end"]},
    )
    assert report["assets"][0] == direct


def test_unknown_site_and_bad_window(api: Api) -> None:
    for path in ("alarm-kpis", "reliability"):
        missing = api.call("admin", "GET", f"{REPORTS}/{path}", params={"site": "nowhere"})
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        backwards = {"site": "plant-a", "since": WINDOW["until"], "until": WINDOW["since"]}
        assert api.call("admin", "GET", f"{REPORTS}/{path}", params=backwards).status_code == 422
        assert api.call("admin", "GET", f"{REPORTS}/{path}").status_code == 422  # site required
