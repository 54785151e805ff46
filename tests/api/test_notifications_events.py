"""The other rule events: returned to normal unacknowledged, overdue orders (once per due
date), and a repair that did not hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.db import make_engine, make_sessionmaker
from api.models import Notification, NotificationRule, NotifyEvent
from api.services.notify import outbox
from api.services.sweeps import sweep
from stack.smtp_sink import SmtpSink
from tests.api.helpers import alert_body
from tests.api.notify_support import (
    EMAIL,
    mail_to,
    notify_settings,
    rota,
    rule,
    running,
    wait_for,
)

WO = "/api/v1/work-orders"


def subjects(sink: SmtpSink, who: str) -> list[str]:
    """The subjects of the mail one person received."""
    return [str(m["Subject"]) for m in mail_to(sink, EMAIL[who])]


def test_an_alert_that_returns_unacknowledged_is_announced(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        rota(api)
        rule(api, "alert.returned_unacknowledged", [{"after_minutes": 0, "to": ["on_call:1"]}])
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        back = alert_body("plant-a", "pump-01", state="normal", detected_at="2026-11-27T07:05:00Z")
        api.ok("service", "POST", "/api/v1/alerts", json=back)
        (subject,) = wait_for(lambda: subjects(smtp_sink, "technician"), "the mail")
        assert subject == "Returned to normal unacknowledged: pump-01 at plant-a: bearing_wear"


def test_an_overdue_order_is_announced_once_per_due_date(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        rota(api)
        rule(
            api, "work_order.overdue", [{"after_minutes": 0, "to": ["assignee", "role:facilities"]}]
        )
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["role:facilities"]}])
        asset = api.ok("admin", "GET", "/api/v1/assets?code=pump-01")["items"][0]
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        body = {
            "asset_id": asset["id"],
            "title": "Grease bearings",
            "due_at": past,
            "assignee_id": api.user_ids["technician"],
        }
        order = api.ok("facilities", "POST", WO, json=body)
        expected = f"Work order #{order['id']} is overdue: Grease bearings"
        wait_for(lambda: expected in subjects(smtp_sink, "technician"), "the overdue mail")
        # Later passes of the worker (proved by a later message) do not announce it again.
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        wait_for(lambda: len(subjects(smtp_sink, "facilities")) == 2, "the alert mail")
        assert subjects(smtp_sink, "technician").count(expected) == 1
        assert subjects(smtp_sink, "facilities").count(expected) == 1


def test_a_repair_that_did_not_hold_is_announced(database_url: str, smtp_sink: SmtpSink) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        rota(api)
        rule(api, "verification.failed", [{"after_minutes": 0, "to": ["role:facilities"]}])
        alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        order_id = alert["work_order_id"]
        assert order_id
        for step in (
            {"to": "assigned", "assignee_id": api.user_ids["technician"]},
            {"to": "in_progress"},
            {"to": "completed", "resolution": "fixed"},
        ):
            api.ok("facilities", "POST", f"{WO}/{order_id}/transitions", json=step)
        for state, at in (("normal", "2026-11-27T08:00:00Z"), ("active", "2026-11-27T09:00:00Z")):
            body = alert_body("plant-a", "pump-01", state=state, detected_at=at)
            api.ok("service", "POST", "/api/v1/alerts", json=body)
        assert api.ok("admin", "GET", f"{WO}/{order_id}")["state"] == "reopened"
        (subject,) = wait_for(lambda: subjects(smtp_sink, "facilities"), "the mail")
        assert subject == f"Repair did not hold: work order #{order_id} reopened"


def test_retention_forgets_what_was_handled_but_keeps_the_rest(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(database_url, smtp_sink.port, retention_days=30)
    with running(settings):
        engine = make_engine(settings.database_url)
        try:
            now = datetime.now(UTC)
            old = now - timedelta(days=31)
            with make_sessionmaker(engine)() as session, session.begin():
                for status in ("delivered", "grouped", "dead", "pending"):
                    session.add(
                        Notification(
                            event="alert.raised",
                            recipient="user:1",
                            channel="email",
                            address="a@b.c",
                            subject=status,
                            body_text="",
                            status=status,
                            next_attempt_at=now,
                            created_at=old,
                        )
                    )
            with make_sessionmaker(engine)() as session, session.begin():
                assert outbox.purge(session, settings.notify, now) == 2
            with make_sessionmaker(engine)() as session:
                left = session.scalars(sa.select(Notification.status)).all()
                assert sorted(left) == ["dead", "pending"]
        finally:
            engine.dispose()


def test_an_event_that_cannot_be_fanned_out_is_set_aside(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(database_url, smtp_sink.port)
    with running(settings) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1"]}])
        engine = make_engine(settings.database_url)
        try:
            # A rule the API would refuse, written behind its back: its target cannot resolve.
            with make_sessionmaker(engine)() as session, session.begin():
                bad = NotificationRule(
                    name="bad", event="alert.raised", min_severity="low",
                    steps=[{"after_minutes": 0, "to": ["on_call:x"]}], active=True,
                    created_by="test", created_at=datetime.now(UTC),
                )  # fmt: skip
                session.add(bad)
            api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))

            def set_aside() -> list[dict[str, object]]:
                with make_sessionmaker(engine)() as session:
                    rows = session.scalars(sa.select(NotifyEvent)).all()
                    return [r.data for r in rows if r.processed_at and "error" in r.data]

            (data,) = wait_for(set_aside, "the event set aside")
            assert "ValueError" in str(data["error"])
            with make_sessionmaker(engine)() as session, session.begin():
                session.execute(sa.delete(NotificationRule).where(NotificationRule.name == "bad"))
            other = alert_body("plant-a", "pump-01", failure_mode="cavitation")
            api.ok("service", "POST", "/api/v1/alerts", json=other)
            (subject,) = wait_for(lambda: subjects(smtp_sink, "technician"), "the next mail")
            assert subject.endswith("cavitation")
        finally:
            engine.dispose()


def test_a_preventive_order_falling_due_is_announced(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(database_url, smtp_sink.port)
    with running(settings) as api:
        rota(api)
        rule(api, "pm.due_soon", [{"after_minutes": 0, "to": ["role:facilities"]}])
        asset = api.ok("admin", "GET", "/api/v1/assets?code=pump-01")["items"][0]
        plan = {
            "site_id": asset["site_id"], "asset_id": asset["id"], "title": "Check the seals",
            "every": 1, "unit": "months",
            "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        }  # fmt: skip
        api.ok("facilities", "POST", "/api/v1/pm-plans", json=plan)
        engine = make_engine(settings.database_url)
        try:
            sweep(make_sessionmaker(engine), settings.policy, datetime.now(UTC))
        finally:
            engine.dispose()
        (subject,) = wait_for(lambda: subjects(smtp_sink, "facilities"), "the PM mail")
        assert subject == "Preventive maintenance due: Check the seals (pump-01)"
