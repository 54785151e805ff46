"""Timestamps for the fast codec: RFC 3339 strings and epoch numbers to nanoseconds, in batches.

``parse_rfc3339_ns`` (the general path) runs a regular expression and a calendar check per
string: about 4 µs. Gateways write the same second, minute and zone over and over, so this
cache keeps the epoch of each second prefix (``2026-11-27T07:00:00``), of each minute
(``2026-11-27T07:00``, learnt *through* ``parse_rfc3339_ns``, so a date and time are valid
exactly when the general path says so) and the offset of each zone suffix (``Z``,
``+07:00``, also learnt through it); seconds and fractions are checked here as ASCII digits.
For a batch whose strings share one layout every check is a C call per character column and
the conversion two C-level passes (see ``TimeCache.many``). Anything else raises ``DeclineError``
and the general path decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from operator import add, itemgetter, mul
from typing import Any

from telemetry.errors import DecodeError
from telemetry.timeutil import PRECISION_TO_NS, parse_rfc3339_ns

_CACHE_MAX = 100_000  # seconds, minutes and zones repeat; bounded against a flood of new ones
_NS = 1_000_000_000
_SECOND = itemgetter(slice(0, 19))  # "2026-11-27T07:00:00"
_INTS = frozenset((int,))
_NUMBERS = frozenset((int, float))
_STRS = frozenset((str,))


class DeclineError(Exception):
    """Not for the fast path: the general path decides and words any rejection."""


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` alone accepts ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


class TimeCache:
    """RFC 3339 seconds, minutes and zones learnt once; see the module docstring."""

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}  # "2026-11-27T07:00:00" → epoch ns
        self._minutes: dict[str, int] = {}  # "2026-11-27T07:00" → epoch s
        self._zones: dict[str, int] = {"Z": 0, "z": 0}  # suffix → ns to add

    def _second(self, prefix: str) -> int | None:
        """Epoch ns of a ``YYYY-MM-DDTHH:MM:SS`` prefix (the minute checked by the general
        parser, the seconds here), or None when the general parser would refuse it."""
        value = self._seconds.get(prefix)
        if value is None:
            seconds = prefix[17:]
            if len(prefix) != 19 or prefix[16] != ":" or not _digits(seconds):
                return None
            minute = self._minutes.get(prefix[:16])
            if minute is None:
                try:
                    minute = parse_rfc3339_ns(prefix[:16] + ":00Z") // _NS
                except DecodeError:
                    return None
                if len(self._minutes) >= _CACHE_MAX:
                    self._minutes.clear()
                self._minutes[prefix[:16]] = minute
            if int(seconds) > 60:  # 60: a leap second, as the general parser allows
                return None
            value = (minute + int(seconds)) * _NS
            if len(self._seconds) >= _CACHE_MAX:
                self._seconds.clear()
            self._seconds[prefix] = value
        return value

    def _zone(self, suffix: str) -> int | None:
        value = self._zones.get(suffix)
        if value is None:
            if len(suffix) != 6:
                return None
            try:
                value = parse_rfc3339_ns("1970-01-01T00:00:00" + suffix)
            except DecodeError:
                return None
            if len(self._zones) >= _CACHE_MAX:
                self._zones.clear()
            self._zones[suffix] = value
        return value

    def one(self, text: str) -> int:
        """Epoch ns of one RFC 3339 string, or raise DeclineError."""
        second = self._second(text[:19])
        cut = -1 if text[-1:] in ("Z", "z") else -6
        zone = self._zone(text[cut:])
        fraction = text[19:cut]
        if second is None or zone is None or len(text) < 20:
            raise DeclineError
        if fraction:
            if not (2 <= len(fraction) <= 10 and fraction[0] == "." and _digits(fraction[1:])):
                raise DeclineError
            return second + int(fraction[1:].ljust(9, "0")) + zone
        return second + zone

    def many(self, texts: list[str]) -> list[int]:
        """Epoch ns of RFC 3339 strings, or raise DeclineError (see the module docstring).

        Strings of one layout (one length and zone suffix, the same number of fraction digits)
        are checked with strided slices of their concatenation, one C call per column
        (``joined[19::length]`` is every string's 20th character), and converted with two
        passes: the cached epoch of each ``YYYY-MM-DDTHH:MM:SS`` and ``int`` of each fraction.
        """
        first = texts[0]
        length = len(first)
        cut = 1 if first[-1:] in ("Z", "z") else 6
        joined = "".join(texts)
        count = len(texts)
        if length < 20 or len(joined) != length * count or len(set(map(len, texts))) != 1:
            return list(map(self.one, texts))  # other layouts: one by one
        suffix = first[length - cut :]
        zone = self._zone(suffix)
        if zone is None:
            raise DeclineError
        if any(joined[length - cut + i :: length] != suffix[i] * count for i in range(cut)):
            return list(map(self.one, texts))  # zones differ
        prefixes = list(map(_SECOND, texts))
        stamps: list[Any] = list(map(self._seconds.get, prefixes))
        if None in stamps:
            for prefix in set(prefixes).difference(self._seconds):
                if self._second(prefix) is None:
                    raise DeclineError
            stamps = list(map(self._seconds.get, prefixes))
            if None in stamps:  # the cache was reset mid-batch
                return list(map(self.one, texts))
        digits = length - cut - 20  # fraction digits after the "."
        if digits >= 0:
            columns = "".join(joined[20 + i :: length] for i in range(digits))
            if not 1 <= digits <= 9 or joined[19::length] != "." * count or not _digits(columns):
                raise DeclineError
            fractions: Any = map(int, map(itemgetter(slice(20, 20 + digits)), texts))
            if digits < 9:
                fractions = map(mul, fractions, repeat(10 ** (9 - digits)))
            stamps = list(map(add, stamps, fractions))
        elif length - cut != 19:
            raise DeclineError
        return list(map(add, stamps, repeat(zone))) if zone else stamps


def scale_numbers(raw: list[Any], factors: list[int] | int) -> list[int]:
    """Epoch numbers in precision units to ns as the general path does (``int * factor``,
    ``round(float * factor)``); raise DeclineError for anything else (booleans, overflow)."""
    kinds = set(map(type, raw))
    by: Iterable[int] = repeat(factors) if isinstance(factors, int) else factors
    if kinds == _INTS:
        return raw if factors == 1 else list(map(mul, raw, by))
    if not kinds <= _NUMBERS:
        raise DeclineError
    try:  # round(int) is the int itself; a float may overflow (1e300 s in ns is inf)
        return list(map(round, map(mul, raw, by)))
    except (OverflowError, ValueError):
        raise DeclineError from None


def stamps_ns(raw: list[Any], factors: list[int] | int, times: TimeCache) -> list[int]:
    """The ns timestamps of a batch's ``time`` values (all numbers, or all strings)."""
    if set(map(type, raw)) == _STRS:
        return times.many(raw)
    return scale_numbers(raw, factors)


def precision_factors(values: list[Any]) -> list[int] | int:
    """The ns factor of each record's precision name (one int when they agree), or DeclineError."""
    if set(map(type, values)) != _STRS:
        raise DeclineError
    names = set(values)
    if not names <= PRECISION_TO_NS.keys():
        raise DeclineError
    if len(names) == 1:
        return PRECISION_TO_NS[names.pop()]
    return list(map(PRECISION_TO_NS.__getitem__, values))
