"""Conditional GETs of the lists (ETag / If-None-Match → 304) and keyset cursors (issue 20)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from api import revisions
from api.db import make_engine, make_sessionmaker
from api.listing import PageCache, encode_cursor
from api.main import create_app
from api.models import WorkOrder, utcnow
from api.settings import Settings
from tests.api.helpers import (
    Api,
    alert_body,
    create_asset,
    create_site,
    make_settings,
    serve,
    setup_roles,
)

ORDERS = "/api/v1/work-orders"
# A well-formed cursor of the unfiltered listing whose id no SQL integer can hold.
HUGE_ID_CURSOR = encode_cursor(
    hashlib.sha256(json.dumps([ORDERS, []]).encode()).hexdigest()[:16], [10**30]
)


def app_settings(app: FastAPI) -> Settings:
    """The settings the app was built with (its lifespan has run)."""
    settings: Settings = app.state.equipmon.settings
    return settings


def _create_orders(api: Api, asset: dict[str, Any], count: int) -> list[int]:
    return [
        api.ok(
            "admin",
            "POST",
            ORDERS,
            json={"asset_id": asset["id"], "title": f"job {i}", "failure_mode": f"mode-{i}"},
        )["id"]
        for i in range(count)
    ]


def test_a_poll_with_nothing_new_is_304_and_a_change_gives_a_new_etag(
    api: Api, asset: dict[str, Any]
) -> None:
    (order_id,) = _create_orders(api, asset, 1)
    first = api.call("facilities", "GET", ORDERS)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    again = api.call("facilities", "GET", ORDERS, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == tag
    # Another caller or other filters: another representation, another tag.
    assert api.call("technician", "GET", ORDERS).headers["ETag"] != tag
    assert api.call("facilities", "GET", f"{ORDERS}?limit=5").headers["ETag"] != tag
    # A write to another table leaves the work-order list as it was.
    api.ok("admin", "POST", "/api/v1/sites", json={"code": "plant-b", "name": "B"})
    still = api.call("facilities", "GET", ORDERS, headers={"If-None-Match": tag})
    assert still.status_code == 304
    etag = api.call("admin", "GET", f"{ORDERS}/{order_id}").headers["ETag"]
    api.ok(
        "admin",
        "PATCH",
        f"{ORDERS}/{order_id}",
        json={"labour_minutes": 30},
        headers={"If-Match": etag},
    )
    changed = api.call("facilities", "GET", ORDERS, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["items"][0]["labour_minutes"] == 30
    assert changed.headers["ETag"] != tag


def test_a_write_by_another_process_changes_the_etag(
    api: Api, asset: dict[str, Any], database_url: str
) -> None:
    """Another API worker (its own engine and sessions) writes: the tag moves with its commit."""
    (order_id,) = _create_orders(api, asset, 1)
    tag = api.call("admin", "GET", ORDERS).headers["ETag"]
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        with sessions() as session, session.begin():
            order = session.get(WorkOrder, order_id)
            assert order is not None
            order.title = "changed elsewhere"
            order.updated_at = utcnow()
            # Before the commit, readers still see the old revision and the old row.
            assert (
                api.call("admin", "GET", ORDERS, headers={"If-None-Match": tag}).status_code == 304
            )
        after = api.call("admin", "GET", ORDERS, headers={"If-None-Match": tag})
        assert after.status_code == 200
        assert after.json()["items"][0]["title"] == "changed elsewhere"
        # A Core statement through a session counts as well.
        tag = after.headers["ETag"]
        with sessions() as session, session.begin():
            session.execute(sa.update(WorkOrder).values(priority=1))
        assert api.call("admin", "GET", ORDERS, headers={"If-None-Match": tag}).status_code == 200
    finally:
        engine.dispose()


def test_every_tracked_table_has_its_counter(database_url: str, api: Api) -> None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine, read_only=True)() as session:
            current = revisions.current(session, revisions.TRACKED)
        assert {part.partition(":")[0] for part in current.split(",")} == revisions.TRACKED
    finally:
        engine.dispose()


def test_the_alert_list_is_conditional_too(api: Api, asset: dict[str, Any]) -> None:
    api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
    first = api.call("service", "GET", "/api/v1/alerts")
    tag = first.headers["ETag"]
    assert (
        api.call("service", "GET", "/api/v1/alerts", headers={"If-None-Match": tag}).status_code
        == 304
    )
    api.ok(
        "service",
        "POST",
        "/api/v1/alerts",
        json=alert_body("plant-a", "pump-01", state="normal", detected_at="2026-11-27T08:00:00Z"),
    )
    changed = api.call("service", "GET", "/api/v1/alerts", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["items"][0]["condition_active"] is False


def test_cursor_pages_walk_the_whole_list_once(api: Api, asset: dict[str, Any]) -> None:
    created = _create_orders(api, asset, 7)
    first = api.ok("admin", "GET", f"{ORDERS}?limit=3")
    assert first["total"] == 7
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    _create_orders(api, create_asset(api, asset["site_id"], "pump-02"), 1)  # newer: not seen
    while cursor is not None:
        page = api.ok("admin", "GET", ORDERS, params={"limit": 3, "cursor": cursor})
        assert page["total"] is None
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(created, reverse=True)
    # The same walk with offsets gives the same pages (the offset page has a cursor too).
    second = api.ok("admin", "GET", f"{ORDERS}?limit=3&offset=3")
    assert [i["id"] for i in second["items"]] == sorted(created, reverse=True)[2:5]


def test_alert_cursors_follow_the_changed_at_order(api: Api, asset: dict[str, Any]) -> None:
    for i in range(4):
        body = alert_body("plant-a", "pump-01", failure_mode=f"mode-{i}")
        api.ok("service", "POST", "/api/v1/alerts", json=body)
    everything = [a["id"] for a in api.ok("admin", "GET", "/api/v1/alerts")["items"]]
    page = api.ok("admin", "GET", "/api/v1/alerts?limit=3")
    rest = api.ok("admin", "GET", "/api/v1/alerts", params={"cursor": page["next_cursor"]})
    assert [a["id"] for a in page["items"] + rest["items"]] == everything
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJmIjoiYWJjIiwiayI6WzFdfQ", "e30", "!!!", "W10", HUGE_ID_CURSOR]
)
def test_a_bad_cursor_is_a_422_problem(api: Api, asset: dict[str, Any], cursor: str) -> None:
    response = api.call("admin", "GET", ORDERS, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["where"] == "cursor"


def test_a_cursor_is_bound_to_its_filters(api: Api, asset: dict[str, Any]) -> None:
    _create_orders(api, asset, 3)
    page = api.ok("admin", "GET", f"{ORDERS}?limit=1&state=open")
    other = api.call("admin", "GET", ORDERS, params={"cursor": page["next_cursor"]})
    assert other.status_code == 422
    both = api.call(
        "admin", "GET", ORDERS, params={"state": "open", "cursor": page["next_cursor"], "offset": 1}
    )
    assert both.status_code == 422
    assert both.json()["where"] == "offset"


def test_a_list_page_is_one_connection_and_four_selects(database_url: str) -> None:
    """Token, revision, count, rows: no query per row, one pooled connection (SQL events)."""
    app = create_app(make_settings(database_url))
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, app_settings(app))
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        asset = create_asset(api, site["id"])
        _create_orders(api, asset, 5)
        engine: sa.Engine = app.state.equipmon.engine
        selects: list[str] = []
        checkouts: list[object] = []

        def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                selects.append(statement)

        sa.event.listen(engine, "before_cursor_execute", on_execute)
        sa.event.listen(engine.pool, "checkout", lambda *args: checkouts.append(args))
        try:
            page = api.ok("technician", "GET", f"{ORDERS}?limit=3")
        finally:
            sa.event.remove(engine, "before_cursor_execute", on_execute)
        assert len(page["items"]) == 3
        assert len(selects) == 4, selects
        assert len(checkouts) == 1


def _selects_of(engine: sa.Engine, call: Any) -> tuple[Any, list[str]]:
    """What call returns and the SELECTs it sent through engine."""
    selects: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        return call(), selects
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)


def test_a_page_is_made_once_per_etag_and_again_after_a_write(database_url: str) -> None:
    """The same ETag is the same body: a second request reads the revision only (issue 20)."""
    app = create_app(make_settings(database_url))
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, app_settings(app))
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        asset = create_asset(api, site["id"])
        (order_id, _) = _create_orders(api, asset, 2)
        engine: sa.Engine = app.state.equipmon.engine
        first = api.call("facilities", "GET", f"{ORDERS}?limit=1")
        again, selects = _selects_of(
            engine, lambda: api.call("facilities", "GET", f"{ORDERS}?limit=1")
        )
        assert again.content == first.content
        assert again.headers["ETag"] == first.headers["ETag"]
        assert len(selects) == 1, selects  # the revision; the token is cached too
        # Another window of the same filter counts nothing again (the total is the filter's).
        other, selects = _selects_of(
            engine, lambda: api.call("facilities", "GET", f"{ORDERS}?limit=2")
        )
        assert other.json()["total"] == 2
        assert len(selects) == 2, selects  # the revision and the rows
        # A write moves the revision: the next page is made again, with the change.
        etag = api.call("admin", "GET", f"{ORDERS}/{order_id}").headers["ETag"]
        api.ok(
            "admin",
            "PATCH",
            f"{ORDERS}/{order_id}",
            json={"title": "new"},
            headers={"If-Match": etag},
        )
        changed = api.call("facilities", "GET", f"{ORDERS}?limit=2")
        assert changed.headers["ETag"] != other.headers["ETag"]
        assert [i["title"] for i in changed.json()["items"] if i["id"] == order_id] == ["new"]


def test_technicians_never_get_each_others_pages(api: Api, asset: dict[str, Any]) -> None:
    """Visibility is part of a cached page's key: each technician sees only their own."""
    (order_id,) = _create_orders(api, asset, 1)
    etag = api.call("admin", "GET", f"{ORDERS}/{order_id}").headers["ETag"]
    assign = {"to": "assigned", "assignee_id": api.user_ids["technician"]}
    transition = f"{ORDERS}/{order_id}/transitions"
    api.ok("admin", "POST", transition, json=assign, headers={"If-Match": etag})
    for _ in range(2):  # the second of each is served from the cache
        assert [i["id"] for i in api.ok("technician", "GET", ORDERS)["items"]] == [order_id]
        assert api.ok("technician2", "GET", ORDERS)["items"] == []


def test_the_page_cache_is_bounded_by_bytes() -> None:
    cache = PageCache(max_bytes=10)
    cache.put(("a", None), b"12345")
    cache.put(("b", 1), b"12345")
    cache.put(("c", None), b"123")  # the oldest goes
    assert cache.get(("a", None)) is None
    assert cache.get(("b", 1)) == b"12345"
    assert cache.get(("c", None)) == b"123"
    cache.put(("d", None), b"12345678901")  # larger than the whole cache: not kept
    assert cache.get(("d", None)) is None
    assert cache.get(("b", 1)) == b"12345"
