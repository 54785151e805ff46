"""Timestamps at nanosecond precision: RFC 3339 parsing/formatting and epoch precisions."""

from __future__ import annotations

import calendar
import re
import time

from telemetry.errors import DecodeError

# Multipliers from an epoch in the given unit to nanoseconds (InfluxDB's precision names).
PRECISION_TO_NS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def precision_factor(precision: object, *, where: str = "precision") -> int:
    """Return the ns multiplier of a precision name or raise DecodeError naming the valid ones."""
    if not isinstance(precision, str) or precision not in PRECISION_TO_NS:
        raise DecodeError(
            f"unknown precision {precision!r}; use one of ns, us, ms, s",
            where=where,
            reason="unknown_precision",
        )
    return PRECISION_TO_NS[precision]


def parse_rfc3339_ns(text: str, *, where: str = "time") -> int:
    """Parse an RFC 3339 timestamp (up to 9 fraction digits, explicit offset) to epoch nanoseconds.

    Python's datetime stops at microseconds, so the fraction is handled as an integer here.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise DecodeError(
            f"timestamp {text!r} is not RFC 3339 (e.g. 2026-11-27T07:00:00.123456789Z)",
            where=where,
            reason="bad_time",
        )
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    # Checked field by field against the real calendar: timegm would roll 2026-02-31 over to
    # 3 March, and fails outright on year 0 (which RFC 3339 allows and the calendar lacks).
    if not (
        year >= 1
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and second < 61
        and (not match.group(9) or (int(match.group(10)) < 24 and int(match.group(11)) < 60))
    ):
        raise DecodeError(
            f"timestamp {text!r} has a field out of range", where=where, reason="bad_time"
        )
    fraction = match.group(7) or ""
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or "0")


def format_rfc3339_ns(time_ns: int) -> str:
    """Format epoch nanoseconds as RFC 3339 UTC with all nine fraction digits."""
    seconds, fraction = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"
