"""Signed action links (replay, expiry, another action, forgery) and the on-call rota's API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.db import make_engine, make_sessionmaker
from api.models import ActionLink
from api.services.notify import links
from stack.smtp_sink import SmtpSink
from tests.api.helpers import alert_body
from tests.api.notify_support import (
    EMAIL,
    link_path,
    mail_to,
    notify_settings,
    rota,
    rule,
    running,
    site_id,
    text_of,
    wait_for,
)


def test_links_are_single_use_scoped_and_unforgeable(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(database_url, smtp_sink.port)
    with running(settings) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1"]}])
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        (mail,) = wait_for(lambda: mail_to(smtp_sink, EMAIL["technician"]), "the mail")
        path = link_path(text_of(mail))
        token = path.rsplit("/", 1)[1]
        ident, signature = token.split(".")
        other = f"/api/v1/action-links/accept-work-order/{token}"
        assert api.client.post(other).status_code == 403  # made for another action
        assert api.client.get(other).status_code == 403
        forged = [
            f"{int(ident) + 1}.{signature}",
            f"{ident}.{signature[:-2]}xx",
            f"{ident}.",
            "x.y",
        ]
        for bad in forged:
            assert api.client.post(path.replace(token, bad)).status_code == 404, bad
        assert api.client.post(path).status_code == 200
        assert api.client.post(path).status_code == 410  # replayed
        program = api.client.get(path)
        assert program.headers["content-type"] == "application/problem+json"
        assert program.json()["type"].endswith(":gone")
        assert "already used" in program.json()["detail"]
        browser = api.client.get(path, headers={"Accept": "text/html,*/*;q=0.8"})
        assert browser.status_code == 410
        assert browser.headers["content-type"].startswith("text/html")
        assert "already used" in browser.text
        audit = api.ok("admin", "GET", "/api/v1/audit", params={"limit": 500})["items"]
        refusals = [a["changes"]["reason"] for a in audit if a["action"] == "refuse_action_link"]
        # Genuine links' refusals are audited; forgeries are not (anyone can send those).
        assert sorted(set(refusals)) == ["other_action", "used"]
        # Expiry: the same check the route makes, at an instant after the link's lifetime.
        engine = make_engine(settings.database_url)
        try:
            with make_sessionmaker(engine)() as session:
                secret = settings.notify.link_secret
                assert secret is not None
                key = secret.get_secret_value().encode()
                row = session.get(ActionLink, int(ident))
                assert row is not None
                fresh = links.issue(
                    session, key, "acknowledge_alert", row.entity_id, row.user_id, "test",
                    datetime.now(UTC), 60,
                )  # fmt: skip
                session.commit()
                later = datetime.now(UTC) + timedelta(seconds=61)
                with pytest.raises(links.LinkRefusedError) as refused:
                    links.check(session, key, fresh, "acknowledge_alert", later, lock=False)
                assert refused.value.reason == "expired"
                assert links.check(
                    session, key, fresh, "acknowledge_alert", datetime.now(UTC), lock=False
                )
                wrong = links.LinkRefusedError("x")
                assert wrong.link_id is None
        finally:
            engine.dispose()


def test_an_expired_link_is_refused_by_the_route(database_url: str, smtp_sink: SmtpSink) -> None:
    with running(notify_settings(database_url, smtp_sink.port, link_ttl_s=1)) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1"]}])
        alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        (mail,) = wait_for(lambda: mail_to(smtp_sink, EMAIL["technician"]), "the mail")
        path = link_path(text_of(mail))
        wait_for(lambda: api.client.get(path).status_code == 410, "the link to expire")
        assert api.client.post(path).status_code == 410
        assert (
            api.ok("admin", "GET", f"/api/v1/alerts/{alert['id']}")["state"]
            == "active_unacknowledged"
        )


def test_accepting_an_assigned_work_order_from_the_mail(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        rota(api)
        rule(api, "work_order.assigned", [{"after_minutes": 0, "to": ["assignee"]}])
        asset = api.ok("admin", "GET", "/api/v1/assets?code=pump-01")["items"][0]
        order = api.ok(
            "facilities",
            "POST",
            "/api/v1/work-orders",
            json={"asset_id": asset["id"], "title": "Fix seal"},
        )
        api.ok("facilities", "POST", f"/api/v1/work-orders/{order['id']}/transitions",
               json={"to": "assigned", "assignee_id": api.user_ids["technician2"]})  # fmt: skip
        (mail,) = wait_for(lambda: mail_to(smtp_sink, EMAIL["technician2"]), "the assignment mail")
        assert str(mail["Subject"]) == f"Work order #{order['id']} assigned to you: Fix seal"
        path = link_path(text_of(mail))
        assert "/accept-work-order/" in path
        assert api.client.post(path).status_code == 200
        assert (
            api.ok("admin", "GET", f"/api/v1/work-orders/{order['id']}")["state"] == "in_progress"
        )
        assert api.client.post(path).status_code == 410
        assert mail_to(smtp_sink, EMAIL["technician"]) == []


def test_rota_shifts_overrides_and_who_is_on_call_now(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        sid = site_id(api)
        api.ok("admin", "PATCH", f"/api/v1/sites/{sid}", json={"timezone": "Asia/Ho_Chi_Minh"})
        tech, lead = api.user_ids["technician"], api.user_ids["technician2"]
        # Monday 08:00-20:00 and an overnight shift Monday 20:00 → Tuesday 08:00 (site time).
        for starts, ends, user in (("08:00", "20:00", tech), ("20:00", "08:00", lead)):
            body = {
                "site_id": sid,
                "level": 1,
                "user_id": user,
                "weekday": 0,
                "starts": starts,
                "ends": ends,
            }
            api.ok("facilities", "POST", "/api/v1/on-call/shifts", json=body)

        def who(at: str) -> list[str]:
            now = api.ok(
                "technician", "GET", "/api/v1/on-call/now", params={"site_id": sid, "at": at}
            )
            return [u["username"] for level in now["levels"] for u in level["users"]]

        assert who("2026-12-07T02:00:00Z") == ["technician"]  # Monday 09:00 in Ho Chi Minh City
        assert who("2026-12-07T20:00:00Z") == ["technician2"]  # Tuesday 03:00
        assert who("2026-12-08T02:00:00Z") == []  # Tuesday 09:00
        override = {
            "site_id": sid, "level": 1, "user_id": lead, "reason": "swap",
            "starts_at": "2026-12-07T01:00:00Z", "ends_at": "2026-12-07T03:00:00Z",
        }  # fmt: skip
        created = api.ok("facilities", "POST", "/api/v1/on-call/overrides", json=override)
        assert who("2026-12-07T02:00:00Z") == ["technician2"]
        assert (
            api.call("technician", "POST", "/api/v1/on-call/overrides", json=override).status_code
            == 403
        )
        bad = override | {"ends_at": "2026-12-07T00:00:00Z"}
        assert (
            api.call("facilities", "POST", "/api/v1/on-call/overrides", json=bad).status_code == 422
        )
        api.ok("facilities", "DELETE", f"/api/v1/on-call/overrides/{created['id']}")
        assert who("2026-12-07T02:00:00Z") == ["technician"]
        assert len(api.ok("technician", "GET", "/api/v1/on-call/shifts")["items"]) == 2


def test_rules_are_validated_and_listed(database_url: str, smtp_sink: SmtpSink) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        sid = site_id(api)
        base = {"name": "r", "site_id": sid, "event": "alert.raised"}
        for steps in (
            [],
            [{"after_minutes": 5, "to": ["on_call:1"]}, {"after_minutes": 1, "to": ["on_call:2"]}],
            [{"after_minutes": 0, "to": ["somebody"]}],
        ):
            response = api.call(
                "facilities", "POST", "/api/v1/notification-rules", json=base | {"steps": steps}
            )
            assert response.status_code == 422, steps
        made = rule(
            api,
            "alert.raised",
            [{"after_minutes": 0, "to": ["role:facilities"]}],
            min_severity="high",
        )
        steps = [{"after_minutes": 0, "to": ["on_call:1"]}]
        path = f"/api/v1/notification-rules/{made['id']}"
        replaced = api.ok("facilities", "PUT", path, json=base | {"steps": steps})
        assert replaced["steps"][0]["to"] == ["on_call:1"]
        assert replaced["min_severity"] == "low"
        assert (
            api.ok("admin", "GET", "/api/v1/notification-rules", params={"site_id": sid})["total"]
            == 1
        )
        assert api.call("technician", "GET", "/api/v1/notification-rules").status_code == 403
        api.ok("facilities", "DELETE", f"/api/v1/notification-rules/{made['id']}")
        engine = make_engine(api.settings.database_url)
        try:
            with engine.connect() as conn:
                count = conn.execute(sa.text("SELECT count(*) FROM notification_rules")).scalar()
                assert count == 0
        finally:
            engine.dispose()
