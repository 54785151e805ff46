"""JSON payloads of the common shapes straight to line protocol, without building Readings.

Profiled on the bench payloads, the general path (``decode_json`` → ``Reading`` →
``LineFormatter``) spends most of its time on per-field Python work: location strings, a
``Reading`` per record, a validation call per value, then a second pass to format. This fast path
handles the shapes gateways actually send (a single reading or a batch envelope, integer
nanosecond or absent ``time``, float values, sensor names already seen) with one cached format
template per set of sensor names, and returns ``None`` for anything else, so the caller runs the
general path, which accepts or rejects with the exact reason. It never accepts what the general
path would reject, and its output is byte for byte what ``LineFormatter`` writes for the same
readings (tests/collector/test_fastpath.py checks both against the general path).

Two C helpers from orjson carry the per-value work (measured on the bench payload, 8 sensors):
``orjson.loads`` parses in 1.7 µs what ``json`` parses in 8-11 µs, and ``orjson.dumps`` writes a
reading's 8 floats in 0.4 µs where ``repr`` takes 3. When the sensor names need no escaping
(letters, digits, ``_.-``), ``orjson.dumps(sensors)`` and two byte replaces give the fields
directly (``{"a":1.5,"b":2.0}`` → ``a=1.5,b=2.0``). orjson prints the same shortest round-trip
digits as ``repr`` but another notation for exponents (``1e-7`` for ``1e-07``) and below 1e-4
(``0.00001`` for ``1e-05``), so a record whose text shows ``e+``, ``e-`` or ``0.0000`` is
formatted with ``repr`` instead (tests: every finite float prints as ``repr`` prints it).
"""

from __future__ import annotations

import re
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from telemetry.codecs.line_protocol import MEASUREMENT, escape_key, escape_measurement
from telemetry.errors import ValidationError
from telemetry.reading import (
    DEFAULT_LIMITS,
    NS_PER_S,
    QUALITIES,
    RESERVED_SENSOR_NAMES,
    ValidationLimits,
    validate_name,
)

_CACHE_MAX = 100_000  # names and series repeat; bound the caches on fleets with churn
_FLOATS = frozenset((float,))
_DICTS = frozenset((dict,))
_INTS = frozenset((int,))
_STRS = frozenset((str,))
# Keys a record of a uniform gateway batch may have (anything else: the per-record path).
_BATCH_KEYS = frozenset(("asset", "time", "sensors"))
# Where orjson's notation differs from repr's; NaN and inf print as null (see the docstring).
_NOT_REPR = (b"null", b"e+", b"e-", b"0.0000")
# Sensor names that JSON and line protocol both write verbatim (no quotes, escapes or separators).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _fields_text(sensors: dict[str, float], template: str) -> str:
    """``name=value,...`` for plain names: orjson writes the dict and two replaces make it
    line protocol (``{"a":1.5,"b":2.0}`` → ``a=1.5,b=2.0``); repr for other notations."""
    printed = orjson.dumps(sensors)
    if b":null" in printed:
        raise _DeclineError  # not finite: the general path words the rejection
    if b"e+" in printed or b"e-" in printed or b"0.0000" in printed:  # a name may match too:
        return template.format(*map(repr, sensors.values()))  # (repr is just slower)
    return printed[2:-1].replace(b'":', b"=").replace(b',"', b",").decode()


def _values_text(values: Any, template: str) -> str:
    """``name=value,...`` through the template (names that need escaping)."""
    printed = orjson.dumps(list(values))  # b"[1.5,2.25,...]"
    if b"null" in printed:
        raise _DeclineError  # not finite: the general path words the rejection
    if b"e+" in printed or b"e-" in printed or b"0.0000" in printed:
        return template.format(*map(repr, values))
    return template.format(*printed[1:-1].decode().split(","))


class _NotUniformError(Exception):
    """A gateway batch that is not uniform: the per-record path handles it."""


class _DeclineError(Exception):
    """Not the common shape: the general path decides (a fresh instance per raise: reusing
    one would grow its traceback on every raise)."""


class _Context(NamedTuple):
    """What every record of one payload is checked against."""

    site: str
    asset: str
    envelope_site: object
    default_time_ns: int
    lo: int  # oldest acceptable timestamp
    hi: int  # newest acceptable timestamp


class JsonLineFastPath:
    """Formats common JSON payloads as line protocol; ``None`` means "use the general path"."""

    def __init__(self, limits: ValidationLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._measurement = escape_measurement(MEASUREMENT)
        self._max_age_ns = int(limits.max_age_s * NS_PER_S)
        self._max_future_ns = int(limits.max_future_s * NS_PER_S)
        # Only names that passed validation get in: membership is the validity check.
        self._series: dict[tuple[str, str], str] = {}
        self._fields: dict[str, str] = {}
        # A gateway's records repeat the same sensor names in the same order: one format
        # template per name tuple formats all values in a single C call; ``plain`` says the
        # names need no escaping in either JSON or line protocol (see ``_fields_text``).
        self._templates: dict[tuple[str, ...], tuple[str, bool]] = {}

    def _series_key(self, site: str, asset: str) -> str:
        limits = self._limits
        try:
            validate_name(site, what="site", where="site", limits=limits)
            validate_name(asset, what="asset", where="asset", limits=limits)
        except ValidationError:
            raise _DeclineError from None
        if len(self._series) >= _CACHE_MAX:
            self._series.clear()
        key = f"{self._measurement},asset={escape_key(asset)},site={escape_key(site)} "
        self._series[(site, asset)] = key
        return key

    def _learn_fields(self, names: Any) -> bool:
        """Validate and cache sensor names; False when one is invalid or reserved."""
        for name in names:
            if name in self._fields:
                continue
            if type(name) is not str or name in RESERVED_SENSOR_NAMES:
                return False
            try:
                validate_name(name, what="sensor name", where="sensors", limits=self._limits)
            except ValidationError:
                return False
            if len(self._fields) >= _CACHE_MAX:
                self._fields.clear()
            self._fields[name] = escape_key(name) + "="
        return True

    def _template(self, names: tuple[str, ...]) -> tuple[str, bool]:
        if not self._learn_fields(names):
            raise _DeclineError
        if len(self._templates) >= _CACHE_MAX:
            self._templates.clear()
        escaped = (self._fields[n].replace("{", "{{").replace("}", "}}") for n in names)
        template = ",".join(key + "{}" for key in escaped)
        plain = all(_PLAIN_NAME.fullmatch(n) for n in names)
        entry = self._templates[names] = (template, plain)
        return entry

    def convert(
        self, payload: bytes, *, site: str, asset: str, default_time_ns: int, now: int
    ) -> tuple[bytes, int] | None:
        """(line-protocol body, readings) for a common-shape JSON payload, else None."""
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:  # invalid UTF-8/JSON, NaN, huge ints: the general path
            return None  # decides and says why
        envelope_site: object = site
        if type(document) is dict:
            if "readings" in document:
                records = document["readings"]
                if type(records) is not list or "precision" in document:
                    return None
                envelope_site = document.get("site", site)
            else:
                records = [document]
        elif type(document) is list:
            records = document
        else:
            return None
        if not records or len(records) > self._limits.max_batch:
            return None
        context = _Context(
            site, asset, envelope_site, default_time_ns,
            now - self._max_age_ns, now + self._max_future_ns,
        )  # fmt: skip
        try:
            if len(records) == 1:  # most messages: skip the list and the join
                body = self._line(records[0], context)
            else:
                body = self._uniform_batch(records, context) or "\n".join(
                    [self._line(record, context) for record in records]
                )
        except _DeclineError:
            return None
        return body.encode(), len(records)

    def _uniform_batch(self, records: list[Any], c: _Context) -> str | None:
        """All lines of a gateway batch whose records share one plain shape, or None.

        Same checks as ``_line``, but each one is a C-level pass over the whole batch (``map``,
        ``set``, one ``orjson.dumps`` of every sensors dict) instead of a Python frame per
        record: measured on 100-reading batches, ~6 µs per record on the per-record path.
        Records with ``site``, ``quality``, ``precision`` or any other key, differing key sets or
        sensor names, or names that need escaping take the per-record path.
        """
        try:
            keys, sensors = self._batch_sensors(records, c)
            stamps, series = self._batch_series(records, keys, c)
        except _NotUniformError:
            return None
        printed = orjson.dumps(sensors)  # b'[{"a":1.5,"b":2.0},{"a":...}]'
        if any(mark in printed for mark in _NOT_REPR):
            return None  # notations where orjson and repr differ: the per-record path
        fields = printed[3:-2].replace(b'":', b"=").replace(b',"', b",").decode()
        return "\n".join(map("{}{} {}".format, series, fields.split('},{"'), stamps))

    def _batch_sensors(self, records: list[Any], c: _Context) -> tuple[Any, list[Any]]:
        """(the records' one key tuple, their sensors dicts) once all are checked."""
        if set(map(type, records)) != _DICTS or c.envelope_site != c.site:
            raise _NotUniformError
        shapes = set(map(tuple, records))
        if len(shapes) != 1 or not _BATCH_KEYS.issuperset(keys := shapes.pop()):
            raise _NotUniformError
        if "sensors" not in keys:
            raise _NotUniformError
        sensors = list(map(itemgetter("sensors"), records))
        if set(map(type, sensors)) != _DICTS or len(names_seen := set(map(tuple, sensors))) != 1:
            raise _NotUniformError
        names = names_seen.pop()
        if not names or len(names) > self._limits.max_sensors:
            raise _NotUniformError
        if set(map(type, chain.from_iterable(map(dict.values, sensors)))) != _FLOATS:
            raise _NotUniformError
        if not (self._templates.get(names) or self._template(names))[1]:
            raise _NotUniformError  # names that need escaping
        return keys, sensors

    def _batch_series(
        self, records: list[Any], keys: Any, c: _Context
    ) -> tuple[list[Any], list[Any]]:
        """(timestamps, series keys) of the records, checked like ``_line`` checks them."""
        stamps: list[Any] = [c.default_time_ns] * len(records)
        if "time" in keys:
            stamps = list(map(itemgetter("time"), records))
            if set(map(type, stamps)) != _INTS or min(stamps) < c.lo or max(stamps) > c.hi:
                raise _NotUniformError
        assets: list[Any] = [c.asset] * len(records)
        if "asset" in keys:
            assets = list(map(itemgetter("asset"), records))
            if set(map(type, assets)) != _STRS:
                raise _NotUniformError
        series_keys = list(zip(repeat(c.site), assets, strict=False))
        for site, asset in set(series_keys).difference(self._series):
            self._series_key(site, asset)  # validates the names (raises _DeclineError)
        series = list(map(self._series.get, series_keys))
        if None in series:  # the cache was reset mid-batch (a fleet with churn)
            raise _NotUniformError
        return stamps, series

    def _line(self, record: Any, c: _Context) -> str:
        """One record as one line; raises _DeclineError for anything but the common shape."""
        if type(record) is not dict or "precision" in record:
            raise _DeclineError
        if record.get("site", c.envelope_site) != c.site:
            raise _DeclineError
        asset = record.get("asset", c.asset)
        if type(asset) is not str:
            raise _DeclineError
        series = self._series.get((c.site, asset)) or self._series_key(c.site, asset)
        stamp = record.get("time", c.default_time_ns)
        if type(stamp) is not int or not c.lo <= stamp <= c.hi:
            raise _DeclineError
        sensors = record.get("sensors")
        if type(sensors) is not dict or not sensors or len(sensors) > self._limits.max_sensors:
            raise _DeclineError
        values = sensors.values()
        if set(map(type, values)) != _FLOATS:
            raise _DeclineError
        template, plain = self._templates.get(tuple(sensors)) or self._template(tuple(sensors))
        text = _fields_text(sensors, template) if plain else _values_text(values, template)
        quality = record.get("quality")
        if quality is not None:
            if type(quality) is not str or quality not in QUALITIES:
                raise _DeclineError
            text += f',quality="{quality}"'
        return f"{series}{text} {stamp}"
