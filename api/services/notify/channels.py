"""Sending one message: e-mail over SMTP, and the chat formats of Slack, Teams, Telegram, Zalo.

Each sender raises `SendError` with a short reason on failure; the outbox retries it.
Web push would be one more sender here.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from api.settings import NotifySettings

CHAT_KINDS = ("slack", "teams", "telegram", "zalo")
CHANNELS = ("email", *CHAT_KINDS)


class SendError(Exception):
    """A delivery attempt failed (the reason is kept on the outbox row)."""


@dataclass(frozen=True)
class Outgoing:
    """One outbox row, as the sender needs it (read in the claiming transaction)."""

    id: int
    channel: str
    address: str
    subject: str
    text: str
    html: str
    link: str | None
    url: str = ""
    token: str = ""


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > meaning (links, mentions): send them as entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_email(settings: NotifySettings, item: Outgoing) -> None:
    """Plain text plus simple HTML over SMTP (STARTTLS or TLS, AUTH when configured)."""
    smtp = settings.smtp
    mail = EmailMessage()
    mail["From"] = smtp.from_address
    mail["To"] = item.address
    mail["Subject"] = item.subject
    # One Message-ID per outbox row: a retry after a lost reply is recognisably the same mail.
    domain = smtp.from_address.rpartition("@")[2] or "equipmon"
    mail["Message-ID"] = make_msgid(f"notification-{item.id}", domain=domain)
    mail["X-Equipmon-Notification"] = str(item.id)
    mail.set_content(item.text)
    mail.add_alternative(item.html, subtype="html")
    try:
        client: smtplib.SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_s, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.username and smtp.password:
                client.login(smtp.username, smtp.password.get_secret_value())
            client.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP: {type(exc).__name__}: {exc}"[:2000]) from exc


def chat_request(
    settings: NotifySettings, item: Outgoing
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(URL, JSON body, headers) of a chat message in the format its service expects."""
    label = "Open" if not item.link else "Acknowledge / accept"
    if item.channel == "slack":
        # Incoming webhook: `text` is the fallback, blocks show the button.
        text = f"*{_slack_escape(item.subject)}*\n{_slack_escape(item.text)}"
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
        ]
        if item.link:
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "url": item.link,
            }
            blocks.append({"type": "actions", "elements": [button]})
        return item.url, {"text": _slack_escape(item.subject), "blocks": blocks}, {}
    if item.channel == "teams":
        # Workflows / incoming webhook: one Adaptive Card in a message.
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": item.subject, "weight": "Bolder", "wrap": True},
                {"type": "TextBlock", "text": item.text, "wrap": True},
            ],
        }
        if item.link:
            card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": item.link}]
        attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        return item.url, {"type": "message", "attachments": [attachment]}, {}
    if item.channel == "telegram":
        base = (item.url or settings.telegram_api_url).rstrip("/")
        body: dict[str, Any] = {
            "chat_id": item.address,
            "text": f"{item.subject}\n\n{item.text}"[:4096],
            "link_preview_options": {"is_disabled": True},
        }
        if item.link:
            body["reply_markup"] = {"inline_keyboard": [[{"text": label, "url": item.link}]]}
        return f"{base}/bot{item.token}/sendMessage", body, {}
    if item.channel == "zalo":
        url = item.url or settings.zalo_api_url
        body = {
            "recipient": {"user_id": item.address},
            "message": {"text": f"{item.subject}\n\n{item.text}"[:2000]},
        }
        return url, body, {"access_token": item.token}
    raise SendError(f"unknown channel {item.channel!r}")


def send_chat(client: httpx.Client, settings: NotifySettings, item: Outgoing) -> None:
    """POST a chat message; a non-2xx answer, or an API-level error in a 200, is a failure."""
    url, body, headers = chat_request(settings, item)
    try:
        response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise SendError(f"{type(exc).__name__}: {exc}"[:2000]) from exc
    if not 200 <= response.status_code < 300:
        raise SendError(f"HTTP {response.status_code}")
    if item.channel in ("telegram", "zalo"):
        # Both answer 200 with the verdict in the body: {"ok": false} / {"error": -216}.
        try:
            verdict = response.json()
        except ValueError as exc:
            raise SendError("answer is not JSON") from exc
        ok = verdict.get("ok") is True if item.channel == "telegram" else verdict.get("error") == 0
        if not ok:
            raise SendError(f"{item.channel}: {str(verdict)[:500]}")
