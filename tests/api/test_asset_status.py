"""Asset status: the analytics contract (upsert of the latest per asset), validation, listing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.api.helpers import Api, create_asset, create_site

STATUS = "/api/v1/asset-status"


def item(asset: str = "pump-01", at: str = "2026-11-27T07:00:00Z", **fields: Any) -> dict[str, Any]:
    """One status item of plant-a as the analytics service sends it."""
    return {
        "site": "plant-a",
        "asset": asset,
        "state": "alarm",
        "health": 42.5,
        "score": 7.3,
        "threshold": 5.0,
        "contributors": [{"sensor": "vibration_rms", "share": 0.7}],
        "observed_at": at,
        "message": "vibration rising",
        **fields,
    }


def post(api: Api, *items: dict[str, Any], role: str = "service") -> Any:
    return api.call(role, "POST", STATUS, json={"items": list(items)})


def test_upsert_keeps_the_latest_and_ignores_older(api: Api, site: dict[str, Any]) -> None:
    create_asset(api, site["id"], "fan-02", criticality="low")
    first = post(
        api,
        item(),
        item("fan-02", state="learning", health=None, learning_until="2026-11-28T07:00:00Z"),
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 2, "ignored_stale": 0}
    newer = post(api, item(at="2026-11-27T07:05:00Z", state="normal", health=90, contributors=[]))
    assert newer.json() == {"accepted": 1, "ignored_stale": 0}
    # A retry that arrives late (older than what is stored) changes nothing.
    late = post(api, item(at="2026-11-27T07:01:00Z", state="alarm", health=10))
    assert late.json() == {"accepted": 0, "ignored_stale": 1}
    # Within one batch, the newest item of an asset wins whatever its position.
    batch = post(
        api,
        item("fan-02", at="2026-11-27T08:00:00Z", state="stale"),
        item("fan-02", at="2026-11-27T07:30:00Z", state="normal"),
    )
    assert batch.json() == {"accepted": 1, "ignored_stale": 1}
    rows = api.ok("technician", "GET", STATUS)
    by_asset = {row["asset"]: row for row in rows}
    assert [row["asset"] for row in rows] == ["fan-02", "pump-01"]
    pump = by_asset["pump-01"]
    assert pump["state"] == "normal"
    assert pump["health"] == 90
    assert pump["contributors"] == []
    assert pump["site"] == "plant-a"
    assert pump["asset_name"] == "pump-01"
    assert pump["asset_type"] == "pump"
    assert pump["observed_at"].startswith("2026-11-27T07:05:00")
    assert pump["age_s"] > 0
    assert by_asset["fan-02"]["state"] == "stale"
    assert by_asset["fan-02"]["learning_until"] is None


def test_same_time_retry_is_idempotent(api: Api) -> None:
    assert post(api, item()).json() == {"accepted": 1, "ignored_stale": 0}
    assert post(api, item()).json() == {"accepted": 1, "ignored_stale": 0}
    assert len(api.ok("facilities", "GET", STATUS)) == 1


def test_unknown_asset_or_site_rejects_the_batch(api: Api) -> None:
    response = post(api, item(), item("nope"))
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["where"] == "items[1].asset"
    assert "nope" in problem["detail"]
    unknown_site = post(api, {**item(), "site": "elsewhere"})
    assert unknown_site.status_code == 422
    assert unknown_site.json()["where"] == "items[0].site"
    assert api.ok("admin", "GET", STATUS) == []  # nothing of the rejected batches was stored


def test_invalid_bodies_are_problems(api: Api) -> None:
    bad_items: list[Any] = [
        [],
        [item(state="broken")],
        [item(health=101)],
        [item(at="2026-11-27T07:00:00")],  # naive time
        [item(message="x" * 4001)],
        [item(contributors=[{"sensor": "", "share": 1}])],
        [item()] * 5001,
    ]
    for items in bad_items:
        response = api.call("service", "POST", STATUS, json={"items": items})
        assert response.status_code == 422, items[:1]
        assert response.json()["status"] == 422
    assert api.call("service", "POST", STATUS, json={"items": [item()], "x": 1}).status_code == 422
    assert api.call("service", "POST", STATUS, content=b"{").status_code == 422


def test_roles_and_site_filter(api: Api) -> None:
    other = create_site(api, "plant-b")
    create_asset(api, other["id"], "chiller-01")
    post(api, item(), {**item("chiller-01"), "site": "plant-b"})
    for role in ("admin", "facilities", "gateway", "technician"):
        assert post(api, item(), role=role).status_code == 403, role
    for role in ("gateway", "service"):
        assert api.call(role, "GET", STATUS).status_code == 403, role
    only_b = api.ok("facilities", "GET", f"{STATUS}?site_id={other['id']}")
    assert [row["asset"] for row in only_b] == ["chiller-01"]
    assert len(api.ok("facilities", "GET", STATUS)) == 2


def test_openapi_documents_the_contract(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/asset-status"]["post"]
    assert operation["x-roles"] == ["service"]
    assert "AssetStatusItem" in schema["components"]["schemas"]


def test_concurrent_first_posts_keep_the_newest(api: Api) -> None:
    # Racing inserts of one asset's first status: the losers replay and compare times.
    times = [f"2026-11-27T07:{minute:02d}:00Z" for minute in range(8)]
    with ThreadPoolExecutor(len(times)) as pool:
        answers = list(pool.map(lambda at: post(api, item(at=at, health=float(at[14:16]))), times))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    rows = api.ok("admin", "GET", STATUS)
    assert len(rows) == 1
    assert rows[0]["observed_at"].startswith("2026-11-27T07:07:00")
    assert rows[0]["health"] == 7
