"""The outbox: retries across an SMTP outage and an API restart, dead letters shown to admins
and on /metrics, and the chat formats (Slack, Teams, Telegram, Zalo) at a local receiver."""

from __future__ import annotations

from collections import Counter
from typing import Any

from api.web.session import COOKIE
from stack.smtp_sink import SmtpSink
from tests.api.helpers import alert_body
from tests.api.notify_support import (
    EMAIL,
    chat_receiver,
    mail_to,
    notify_settings,
    outbox,
    rota,
    rule,
    running,
    site_id,
    wait_for,
)


def test_smtp_outage_across_an_api_restart_delivers_each_message_once(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    settings = notify_settings(
        database_url, smtp_sink.port, max_attempts=100, backoff_s=0.05, backoff_max_s=0.3
    )
    smtp_sink.stop()  # the mail server is down before anything is sent
    with running(settings) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1", "role:facilities"]}])
        for mode in ("bearing_wear", "cavitation", "misalignment"):
            body = alert_body("plant-a", "pump-01", severity="critical", failure_mode=mode)
            api.ok("service", "POST", "/api/v1/alerts", json=body)

        def failed_twice() -> list[dict[str, Any]] | None:
            rows = outbox(api)
            return rows if len(rows) == 6 and all(r["attempts"] >= 2 for r in rows) else None

        failing = wait_for(failed_twice, "every message to have failed twice")
        assert {r["status"] for r in failing} == {"pending"}
        assert "SMTP" in str(failing[0]["last_error"])
        metrics = api.client.get("/metrics").text
        assert 'equipmon_api_notification_channel_up{channel="email"} 0.0' in metrics
        tokens = api
    # The API restarts while the mail server is still down; then the mail server returns.
    with running(settings, tokens) as api:
        wait_for(
            lambda: all(r["attempts"] >= 3 for r in outbox(api)), "a retry by the restarted API"
        )
        smtp_sink.start()
        wait_for(
            lambda: all(r["status"] == "delivered" for r in outbox(api)), "every message delivered"
        )
        ids = Counter(str(m["X-Equipmon-Notification"]) for m in smtp_sink.messages())
        assert len(ids) == 6
        assert set(ids.values()) == {1}
        assert len(mail_to(smtp_sink, EMAIL["technician"])) == 3
        assert len(mail_to(smtp_sink, EMAIL["facilities"])) == 3
        metrics = api.client.get("/metrics").text
        assert 'equipmon_api_notification_channel_up{channel="email"} 1.0' in metrics


def test_a_message_is_dead_after_the_last_attempt_and_admins_see_it(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    smtp_sink.stop()
    with running(notify_settings(database_url, smtp_sink.port, max_attempts=3)) as api:
        rota(api)
        rule(api, "alert.raised", [{"after_minutes": 0, "to": ["on_call:1"]}])
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        (dead,) = wait_for(lambda: outbox(api, status="dead"), "a dead message")
        assert dead["attempts"] == 3
        assert dead["address"] == EMAIL["technician"]
        assert api.call("technician", "GET", "/api/v1/notifications").status_code == 403
        wait_for(
            lambda: (
                'equipmon_api_notifications_dead{channel="email"} 1.0'
                in api.client.get("/metrics").text
            ),
            "the dead message on /metrics",
        )
        fleet = api.client.get(
            "/ui/fleet", headers={"Cookie": f"{COOKIE}={api.tokens['facilities']}"}
        )
        assert fleet.status_code == 200
        assert "email: 1 undeliverable" in fleet.text
        assert "on-call technician: technician" in fleet.text
        smtp_sink.start()
        api.ok("admin", "POST", f"/api/v1/notifications/{dead['id']}/retry")
        wait_for(lambda: outbox(api, status="delivered"), "the retried message delivered")
        assert len(mail_to(smtp_sink, EMAIL["technician"])) == 1


def test_chat_formats_at_a_local_receiver(database_url: str, smtp_sink: SmtpSink) -> None:
    with chat_receiver() as chat, running(notify_settings(database_url, smtp_sink.port)) as api:
        sid = site_id(api)
        channels = [
            {"kind": "slack", "name": "ops", "url": f"{chat.url}/slack/T0/B0/x"},
            {"kind": "teams", "name": "ops-teams", "url": f"{chat.url}/teams/webhook"},
            {
                "kind": "telegram",
                "name": "ops-tg",
                "url": chat.url,
                "token": "123:ABC",
                "chat_id": "-1001",
            },
            {
                "kind": "zalo",
                "name": "ops-zalo",
                "url": f"{chat.url}/zalo/message",
                "token": "zalo-oa-token",
                "chat_id": "4321",
            },
        ]
        ids = [
            api.ok("admin", "POST", "/api/v1/chat-channels", json={"site_id": sid} | c)["id"]
            for c in channels
        ]
        listed = api.call("admin", "GET", "/api/v1/chat-channels")
        assert "123:ABC" not in listed.text
        assert "zalo-oa-token" not in listed.text
        rule(api, "alert.raised", [{"after_minutes": 0, "to": [f"chat:{i}" for i in ids]}])
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        wait_for(lambda: len(chat.requests) >= 4, "four chat messages")
        subject = "[high] pump-01 at plant-a: bearing_wear"
        ((_, _, slack),) = chat.posted("/slack/T0/B0/x")
        assert slack["text"] == subject
        assert slack["blocks"][0]["type"] == "section"
        assert subject in slack["blocks"][0]["text"]["text"]
        button = slack["blocks"][1]["elements"][0]
        assert button["type"] == "button"
        assert "/action-links/acknowledge-alert/" in button["url"]
        ((_, headers, teams),) = chat.posted("/teams/webhook")
        assert headers["content-type"] == "application/json"
        assert teams["type"] == "message"
        (attachment,) = teams["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard"
        assert card["body"][0]["text"] == subject
        assert card["actions"][0]["type"] == "Action.OpenUrl"
        ((_, _, telegram),) = chat.posted("/bot123:ABC/sendMessage")
        assert telegram["chat_id"] == "-1001"
        assert telegram["text"].startswith(subject)
        assert telegram["reply_markup"]["inline_keyboard"][0][0]["url"].count("/action-links/") == 1
        ((_, headers, zalo),) = chat.posted("/zalo/message")
        assert headers["access_token"] == "zalo-oa-token"
        assert zalo["recipient"] == {"user_id": "4321"}
        assert zalo["message"]["text"].startswith(subject)
        wait_for(lambda: len(outbox(api, status="delivered")) == 4, "four deliveries recorded")
        assert {r["channel"] for r in outbox(api)} == {"slack", "teams", "telegram", "zalo"}


def test_people_reach_their_own_telegram_and_zalo_through_the_site_bots(
    database_url: str, smtp_sink: SmtpSink
) -> None:
    with chat_receiver() as chat, running(notify_settings(database_url, smtp_sink.port)) as api:
        sid = site_id(api)
        for body in (
            {"kind": "telegram", "name": "bot", "url": chat.url, "token": "9:TOK", "chat_id": "-1"},
            {"kind": "zalo", "name": "oa", "url": f"{chat.url}/zalo/cs", "token": "oa-tok"},
        ):
            api.ok("admin", "POST", "/api/v1/chat-channels", json={"site_id": sid} | body)
        prefs = {"channels": ["telegram", "zalo", "email"], "telegram_chat_id": "777",
                 "zalo_user_id": "888", "email": EMAIL["technician"]}  # fmt: skip
        api.ok("technician", "PUT", "/api/v1/users/me/notification-settings", json=prefs)
        tech = api.user_ids["technician"]
        rule(api, "alert.raised", [{"after_minutes": 0, "to": [f"user:{tech}"]}])
        api.ok("service", "POST", "/api/v1/alerts", json=alert_body("plant-a", "pump-01"))
        wait_for(
            lambda: len(chat.requests) >= 2 and mail_to(smtp_sink, EMAIL["technician"]),
            "three channels",
        )
        assert chat.posted("/bot9:TOK/sendMessage")[0][2]["chat_id"] == "777"
        assert chat.posted("/zalo/cs")[0][2]["recipient"] == {"user_id": "888"}
