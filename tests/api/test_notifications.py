"""Notifications end to end over a real SMTP server: escalation through the rota, acknowledging
from the e-mail link, floods grouped per recipient, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stack.smtp_sink import SmtpSink
from tests.api.helpers import alert_body
from tests.api.notify_support import (
    EMAIL,
    history,
    link_path,
    mail_to,
    notify_settings,
    outbox,
    rota,
    rule,
    running,
    text_of,
    wait_for,
)

CHAIN = [
    {"after_minutes": 0, "to": ["on_call:1"]},
    {"after_minutes": 1, "to": ["on_call:2"]},
    {"after_minutes": 2, "to": ["on_call:3"]},
]


def test_unacknowledged_alert_escalates_through_the_rota(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    minute = 0.3
    with running(notify_settings(database_url, smtp_sink.port, minute_s=minute)) as api:
        rota(api)
        rule(api, "alert.raised", CHAIN)
        posted = datetime.now(UTC)
        alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        manager = wait_for(lambda: mail_to(smtp_sink, EMAIL["facilities"]), "the manager's mail")
        tech, lead = (
            mail_to(smtp_sink, EMAIL["technician"]),
            mail_to(smtp_sink, EMAIL["technician2"]),
        )
        assert len(tech) == len(lead) == len(manager) == 1
        assert tech[0]["Subject"] == "[high] pump-01 at plant-a: bearing_wear"
        assert lead[0]["Subject"].startswith("[high] Not acknowledged: pump-01")
        assert "/api/v1/action-links/acknowledge-alert/" in text_of(manager[0])
        steps = wait_for(
            lambda: (
                [e for e in history(api, alert["id"]) if e["event"] in ("notified", "escalated")]
                if len([e for e in history(api, alert["id"]) if e["event"] == "escalated"]) == 2
                else None
            ),
            "two escalations in the history",
        )
        assert [e["event"] for e in steps] == ["notified", "escalated", "escalated"]
        assert "user:technician" in steps[0]["reason"]
        assert "user:technician2" in steps[1]["reason"]
        assert "user:facilities" in steps[2]["reason"]
        at = [datetime.fromisoformat(e["at"]) for e in steps]
        # On schedule: never before its minute (counted from the alert's arrival).
        assert at[1] - posted >= timedelta(seconds=minute)
        assert at[2] - posted >= timedelta(seconds=2 * minute)


def test_acknowledging_from_the_mail_link_stops_the_escalation(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    # Long minutes: the technician acknowledges well before the shift lead would be told.
    with running(notify_settings(database_url, smtp_sink.port, minute_s=10)) as api:
        rota(api)
        rule(api, "alert.raised", CHAIN)
        alert = api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        (mail,) = wait_for(lambda: mail_to(smtp_sink, EMAIL["technician"]), "the technician's mail")
        assert mail["To"] == EMAIL["technician"]
        path = link_path(text_of(mail))
        html_part = mail.get_body(("html",))
        assert html_part is not None
        assert path in str(html_part.get_content())
        page = api.client.get(path)
        assert page.status_code == 200
        assert "<form method='post'>" in page.text
        assert (
            api.ok("admin", "GET", f"/api/v1/alerts/{alert['id']}")["state"]
            == "active_unacknowledged"
        )
        done = api.client.post(path)
        assert done.status_code == 200, done.text
        acked = api.ok("admin", "GET", f"/api/v1/alerts/{alert['id']}")
        assert acked["state"] == "active_acknowledged"
        assert acked["acknowledged_by"] == "user:technician"
        events = [e["event"] for e in history(api, alert["id"])]
        assert events == ["activated", "notified", "acknowledged", "escalation_stopped"]
        audit = api.ok("admin", "GET", "/api/v1/audit", params={"limit": 500})["items"]
        assert any(
            a["action"] == "use_action_link" and a["actor"] == "user:technician" for a in audit
        )
        assert api.client.post(path).status_code == 410  # single use
        assert mail_to(smtp_sink, EMAIL["technician2"]) == []


def test_a_flood_of_50_alerts_is_one_grouped_message_per_recipient(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(database_url, smtp_sink.port, flood_window_s=3, flood_max_hold_s=120)
    with running(settings) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1", "role:facilities"]}])
        for n in range(50):
            body = alert_body("plant-a", "pump-01", severity="low", failure_mode=f"mode_{n:02d}")
            api.ok("service", "POST", "/api/v1/alerts", json=body)
        # A critical alarm in the middle of the flood is never held back.
        critical = alert_body("plant-a", "pump-01", severity="critical", failure_mode="seal_leak")
        api.ok("service", "POST", "/api/v1/alerts", json=critical)

        def summaries() -> bool:
            return all(
                any("Alarm flood" in str(m["Subject"]) for m in mail_to(smtp_sink, address))
                for address in (EMAIL["technician"], EMAIL["facilities"])
            )

        wait_for(summaries, "the flood summary to both recipients")
        for address in (EMAIL["technician"], EMAIL["facilities"]):
            subjects = [str(m["Subject"]) for m in mail_to(smtp_sink, address)]
            assert len(subjects) == 3, subjects
            assert subjects[0] == "[low] pump-01 at plant-a: mode_00"  # the first goes out at once
            assert "[critical] pump-01 at plant-a: seal_leak" in subjects
            assert subjects[-1] == "Alarm flood: 49 more alerts"
        summary = next(
            m for m in mail_to(smtp_sink, EMAIL["technician"]) if "flood" in str(m["Subject"])
        )
        assert "mode_01" in text_of(summary)
        assert "+39" in text_of(summary)
        grouped = outbox(api, status="grouped")
        assert len(grouped) == 2 * 49
        assert len({row["group_id"] for row in grouped}) == 2


def test_quiet_hours_defer_all_but_critical(database_url: str, smtp_sink: SmtpSink) -> None:
    with running(notify_settings(database_url, smtp_sink.port)) as api:
        rota(api)
        now = datetime.now(UTC)
        quiet = {
            "channels": ["email"],
            "email": EMAIL["technician"],
            "quiet_start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "quiet_end": (now + timedelta(hours=2)).strftime("%H:%M"),
        }
        api.ok("technician", "PUT", "/api/v1/users/me/notification-settings", json=quiet)
        assert api.ok("technician", "GET", "/api/v1/users/me/notification-settings")["quiet_end"]
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1"]}])
        api.ok(
            "service",
            "POST",
            "/api/v1/alerts",
            json=alert_body("plant-a", "pump-01", severity="medium"),
        )
        crit = alert_body("plant-a", "pump-01", severity="critical", failure_mode="seal_leak")
        api.ok("service", "POST", "/api/v1/alerts", json=crit)
        (mail,) = wait_for(lambda: mail_to(smtp_sink, EMAIL["technician"]), "the critical mail")
        assert str(mail["Subject"]).startswith("[critical]")
        # The mail reaches the sink a moment before its outbox row is settled as sent.
        (deferred,) = wait_for(
            lambda: rows if len(rows := outbox(api, status="pending")) == 1 else None,
            "only the deferred message pending",
        )
        assert deferred["severity"] == "medium"
        assert datetime.fromisoformat(deferred["next_attempt_at"]) > now + timedelta(minutes=90)
