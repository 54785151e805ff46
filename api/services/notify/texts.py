"""Every word a notification says, in one place; other languages through gettext catalogs.

A message is built from a kind and a context; `language` picks the texts (English is the
fallback for any language without them). Nothing else in the API writes notification text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api import i18n


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for the catalog only")
    """Mark a text for the catalog (api/locale); it is translated when a message is built."""
    return message


# kind → (subject, body) in English, the source language; other languages come from the
# gettext catalogs. {placeholders} come from the context. `link_label` names the button.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "alert.raised": (
            N_("[{severity}] {asset} at {site}: {failure_mode}"),
            N_(
                "{asset} ({asset_name}) at {site} raised a {severity} alert: "
                "{failure_mode}.\n{message}"
            ),
        ),
        "alert.escalated": (
            N_("[{severity}] Not acknowledged: {asset} at {site}: {failure_mode}"),
            N_(
                "Nobody has acknowledged the {severity} alert on {asset} ({asset_name}) at "
                "{site} for {minutes} minutes: {failure_mode}. You are next on call (step "
                "{step}).\n{message}"
            ),
        ),
        "alert.returned_unacknowledged": (
            N_("Returned to normal unacknowledged: {asset} at {site}: {failure_mode}"),
            N_(
                "The {severity} alert on {asset} ({asset_name}) at {site} returned to normal "
                "before anyone acknowledged it: {failure_mode}."
            ),
        ),
        "work_order.assigned": (
            N_("Work order #{order_id} assigned to you: {title}"),
            N_(
                "Work order #{order_id} on {asset} at {site} is assigned to you (priority "
                "{priority}, due {due}): {title}."
            ),
        ),
        "work_order.overdue": (
            N_("Work order #{order_id} is overdue: {title}"),
            N_(
                "Work order #{order_id} on {asset} at {site} was due {due} and is still "
                "{state}: {title}."
            ),
        ),
        "pm.due_soon": (
            N_("Preventive maintenance due: {title}"),
            N_("Preventive work order #{order_id} on {asset} at {site} is due {due}: {title}."),
        ),
        "verification.failed": (
            N_("Repair did not hold: work order #{order_id} reopened"),
            N_(
                "The anomaly on {asset} at {site} returned before the repair was verified; "
                "work order #{order_id} is reopened: {title}."
            ),
        ),
        "flood.summary": (
            N_("Alarm flood: {count} more alerts"),
            N_(
                "{count} more alerts were raised within {window} (sites: "
                "{sites}):\n{lines}\nSee them all: {dashboard}"
            ),
        ),
        "link.acknowledge_alert": (N_("Acknowledge"), ""),
        "link.accept_work_order": (N_("Accept work order"), ""),
        "page.confirm": (N_("Confirm"), N_("{what}?")),
        "page.done": (N_("Done"), N_("{what}: done.")),
        "page.refused": (N_("Link refused"), N_("This link cannot be used: {reason}.")),
        "reason.expired": (N_("expired"), ""),
        "reason.used": (N_("already used"), ""),
        "reason.invalid": (N_("not a valid link"), ""),
        "reason.other_action": (N_("made for another action"), ""),
        "reason.state": (N_("nothing left to do ({detail})"), ""),
    }
}
DEFAULT_LANGUAGE = "en"
FLOOD_LINES = 10  # alerts listed by name in a flood summary; the rest are counted


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification: subject, plain text, simple HTML, and its action link."""

    subject: str
    text: str
    html: str
    link: str | None = None
    link_label: str | None = None


def _texts(language: str) -> dict[str, tuple[str, str]]:
    """The texts in a language: English through its gettext catalog (English without one)."""
    language = language.split("-", maxsplit=1)[0].lower()
    if language not in i18n.LANGUAGES or language == DEFAULT_LANGUAGE:
        return TEXTS[DEFAULT_LANGUAGE]
    _ = i18n.gettext(language)
    return {
        key: (_(subject) if subject else "", _(body) if body else "")
        for key, (subject, body) in TEXTS[DEFAULT_LANGUAGE].items()
    }


def word(language: str, key: str, **context: Any) -> str:
    """One short text (a label, a reason) in the language."""
    table = _texts(language)
    subject, _ = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return subject.format(**context)


def render(
    kind: str,
    language: str,
    context: dict[str, Any],
    link: str | None = None,
    link_action: str | None = None,
) -> Message:
    """The message of kind in the language, with the action link (if any) as a button."""
    table = _texts(language)
    subject_t, body_t = table.get(kind) or TEXTS[DEFAULT_LANGUAGE][kind]
    zone = context.get("timezone")
    safe = {
        k: "" if v is None else i18n.local_time(v, zone, language) if isinstance(v, datetime) else v
        for k, v in context.items()
    }
    # One line: a header cannot hold a line break (and a subject should not).
    subject = " ".join(subject_t.format(**safe).split())[:300]
    text = body_t.format(**safe).rstrip()
    label = word(language, f"link.{link_action}") if link and link_action else None
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n") if p)
    button = ""
    if link:
        text += f"\n\n{label or link}: {link}"
        button = f'<p><a href="{html.escape(link)}">{html.escape(label or link)}</a></p>'
    page = f"<html><body><h3>{html.escape(subject)}</h3>{paragraphs}{button}</body></html>"
    return Message(subject, text, page, link, label)


def page_text(language: str, key: str, **context: Any) -> str:
    """The sentence of a page (for a problem document's detail)."""
    table = _texts(language)
    _, body = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return body.format(**context)


def page(language: str, key: str, **context: Any) -> str:
    """A small HTML page of the action-link flow (confirm, done, refused)."""
    table = _texts(language)
    title, body = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    text = html.escape(body.format(**context))
    form = context.get("form", "")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{text}</p>{form}</body></html>"
    )
