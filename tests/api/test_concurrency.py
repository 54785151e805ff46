"""Races through a real uvicorn server: concurrent alert posts, concurrent work-order updates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.helpers import Api, alert_body


def concurrently(count: int, work: Any) -> list[Any]:
    """Run work(i) in count threads released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_concurrent_posts_make_one_alert_and_one_order(api: Api) -> None:
    base = str(api.client.base_url)
    headers = api.headers("service")

    def post(i: int) -> httpx.Response:
        body = alert_body("plant-a", "pump-01", detected_at=f"2026-11-27T07:00:{i:02d}Z")
        with httpx.Client(base_url=base, timeout=60) as client:
            return client.post("/api/v1/alerts", json=body, headers=headers)

    responses = concurrently(20, post)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    alerts = api.ok("admin", "GET", "/api/v1/alerts")
    assert alerts["total"] == 1
    orders = api.ok("admin", "GET", "/api/v1/work-orders")
    assert orders["total"] == 1
    assert {r.json()["work_order_id"] for r in responses} == {orders["items"][0]["id"]}


def test_two_technicians_one_wins_the_other_gets_412(api: Api, asset: dict[str, Any]) -> None:
    order = api.ok(
        "facilities", "POST", "/api/v1/work-orders", json={"asset_id": asset["id"], "title": "x"}
    )
    path = f"/api/v1/work-orders/{order['id']}"
    tag = api.call("technician", "GET", path).headers["ETag"]
    base = str(api.client.base_url)

    def claim(i: int) -> int:
        who = ("technician", "technician2")[i]
        with httpx.Client(base_url=base, timeout=60) as client:
            return client.post(
                f"{path}/transitions",
                json={"to": "assigned"},
                headers=api.headers(who, **{"If-Match": tag}),
            ).status_code

    assert sorted(concurrently(2, claim)) == [200, 412]
    assignee = api.ok("admin", "GET", path)["assignee_id"]
    assert assignee in (api.user_ids["technician"], api.user_ids["technician2"])
