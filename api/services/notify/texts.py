"""Every word a notification says, in one place, per language (issue 19 moves them to gettext).

A message is built from a kind and a context; `language` picks the texts (English is the
fallback for any language without them). Nothing else in the API writes notification text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

# kind → (subject, body); {placeholders} come from the context. `link_label` names the button.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "alert.raised": (
            "[{severity}] {asset} at {site}: {failure_mode}",
            "{asset} ({asset_name}) at {site} raised a {severity} alert: {failure_mode}.\n"
            "{message}",
        ),
        "alert.escalated": (
            "[{severity}] Not acknowledged: {asset} at {site}: {failure_mode}",
            "Nobody has acknowledged the {severity} alert on {asset} ({asset_name}) at {site} "
            "for {minutes} minutes: {failure_mode}. You are next on call (step {step}).\n"
            "{message}",
        ),
        "alert.returned_unacknowledged": (
            "Returned to normal unacknowledged: {asset} at {site}: {failure_mode}",
            "The {severity} alert on {asset} ({asset_name}) at {site} returned to normal "
            "before anyone acknowledged it: {failure_mode}.",
        ),
        "work_order.assigned": (
            "Work order #{order_id} assigned to you: {title}",
            "Work order #{order_id} on {asset} at {site} is assigned to you (priority "
            "{priority}, due {due}): {title}.",
        ),
        "work_order.overdue": (
            "Work order #{order_id} is overdue: {title}",
            "Work order #{order_id} on {asset} at {site} was due {due} and is still "
            "{state}: {title}.",
        ),
        "pm.due_soon": (
            "Preventive maintenance due: {title}",
            "Preventive work order #{order_id} on {asset} at {site} is due {due}: {title}.",
        ),
        "verification.failed": (
            "Repair did not hold: work order #{order_id} reopened",
            "The anomaly on {asset} at {site} returned before the repair was verified; work "
            "order #{order_id} is reopened: {title}.",
        ),
        "flood.summary": (
            "Alarm flood: {count} more alerts",
            "{count} more alerts were raised within {window} (sites: {sites}):\n{lines}\n"
            "See them all: {dashboard}",
        ),
        "link.acknowledge_alert": ("Acknowledge", ""),
        "link.accept_work_order": ("Accept work order", ""),
        "page.confirm": ("Confirm", "{what}?"),
        "page.done": ("Done", "{what}: done."),
        "page.refused": ("Link refused", "This link cannot be used: {reason}."),
        "reason.expired": ("expired", ""),
        "reason.used": ("already used", ""),
        "reason.invalid": ("not a valid link", ""),
        "reason.other_action": ("made for another action", ""),
        "reason.state": ("nothing left to do ({detail})", ""),
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
    return (
        TEXTS.get(language)
        or TEXTS.get(language.split("-", maxsplit=1)[0])
        or TEXTS[DEFAULT_LANGUAGE]
    )


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
    safe = {k: "" if v is None else v for k, v in context.items()}
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
