"""Languages and local times for people: gettext catalogs (Babel), Accept-Language, site zones.

Catalogs live in api/locale/<lang>/LC_MESSAGES/messages.po (compiled to .mo by
`scripts/i18n compile`); docs/i18n.md has the workflow. English is the source language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "vi")
DEFAULT = "en"


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for the catalog only")
    """Mark a text for the catalog; it is translated where it is shown."""
    return message


@lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    """The compiled catalog of a language (English, the source, needs none)."""
    if language not in LANGUAGES or language == "en":
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain="messages")


def gettext(language: str) -> Callable[[str], str]:
    """The `_` of a language."""
    return translations(language).gettext


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """The language of ours the Accept-Language header prefers (`vi-VN, en;q=0.5` → vi)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else default


def zone(name: str | None) -> ZoneInfo:
    """A site's time zone (UTC for an unknown name)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def offset(when: datetime, tz: ZoneInfo) -> str:
    """The UTC offset of a local time: 'UTC+07:00'."""
    delta = when.astimezone(tz).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(when: datetime | None, tz_name: str | None, language: str) -> str:
    """A time for people: in the site's zone, the language's short format, with its offset.

    '07/12/2026, 15:04 (UTC+07:00)' style for en, '15:04 7/12/2026 (UTC+07:00)' for vi.
    """
    if when is None:
        return ""
    tz = zone(tz_name)
    language = (language or DEFAULT).split("-", maxsplit=1)[0].lower()
    locale = Locale.parse(language if language in LANGUAGES else DEFAULT)
    text = format_datetime(when.astimezone(UTC), "short", tzinfo=tz, locale=locale)
    return f"{text} ({offset(when, tz)})"
