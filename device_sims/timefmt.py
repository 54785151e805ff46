"""Durations ("10s", "2h", "1d12h"), RFC 3339 timestamps and epoch nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d|w)")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_duration_s(value: str | float | int) -> float:
    """Seconds in a duration: a number (seconds) or parts like "1d12h", "90s", "250ms"."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} (use e.g. 10s, 5m, 2h, 1d12h)")
    return total


def parse_duration_ns(value: str | float | int) -> int:
    """Nanoseconds in a duration (see parse_duration_s)."""
    return round(parse_duration_s(value) * NS_PER_S)


def parse_rfc3339_ns(text: str) -> int:
    """Epoch nanoseconds of an RFC 3339 timestamp (fraction kept to the nanosecond)."""
    match = _RFC3339.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, frac, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    whole = datetime.fromisoformat(f"{date}T{clock}{offset}")
    return int(whole.timestamp()) * NS_PER_S + int((frac or "").ljust(9, "0"))


@lru_cache(maxsize=4096)
def _stamp(seconds: int) -> str:
    # Many assets share each second in a backfill: formatting a datetime is the slow part.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_rfc3339_ns(time_ns: int) -> str:
    """RFC 3339 in UTC with nine fraction digits, e.g. 2026-11-27T07:00:00.123000000Z."""
    seconds, frac = divmod(time_ns, NS_PER_S)
    return f"{_stamp(seconds)}.{frac:09d}Z"


def parse_time_ns(value: object, start_ns: int) -> int:
    """A scenario time: an offset from the start ("2h", 3600) or an RFC 3339 timestamp."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(aware.timestamp() * NS_PER_S)
    if isinstance(value, str) and _RFC3339.match(value.strip()):
        return parse_rfc3339_ns(value)
    if isinstance(value, str | int | float):
        return start_ns + parse_duration_ns(value)
    raise ValueError(f"not a time or offset: {value!r}")
