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

from telemetry import (
    DEFAULT_LIMITS,
    MEASUREMENT,
    NS_PER_S,
    QUALITIES,
    RESERVED_SENSOR_NAMES,
    ValidationError,
    ValidationLimits,
    escape_key,
    escape_measurement,
    validate_name,
)

_CACHE_MAX = 100_000  # names and series repeat; bound the caches on fleets with churn
_FLOATS = frozenset((float,))
_DICTS = frozenset((dict,))
_INTS = frozenset((int,))
_STRS = frozenset((str,))
# Keys a record of a uniform gateway batch may have (anything else: the per-record path).
_BATCH_KEYS = frozenset(("asset", "time", "sensors"))
# Keys a single-reading message of a uniform read burst may have.
_SINGLE_KEYS = frozenset(("time", "sensors"))
# Sensor names that JSON and line protocol both write verbatim (no quotes, escapes or separators).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# orjson's dump of plain-named sensors dicts as line-protocol field lists, in one C pass:
# ``[{"a":1.5,"b":2.0},{"a":...}]`` → ``[a=1.5,b=2.0\n,a=...\n]`` (quotes and ``{`` deleted).
_TO_FIELDS = bytes.maketrans(b":}", b"=\n")
_NOT_FIELDS = b'"{'


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


class _Template(NamedTuple):
    """How the values of one tuple of sensor names are formatted."""

    template: str  # ``name={},...`` (names escaped): one ``str.format`` call per record
    plain: bool  # no name needs escaping in JSON or line protocol (see ``_fields_text``)
    e_count: int  # letters ``e`` and ``l`` in the names (see ``_plain_fields``)
    l_count: int


def _plain_fields(sensors: list[Any], names: _Template) -> list[str] | None:
    """``name=value,...`` of each sensors dict (all with ``names``, plain, and float values), or
    None when a value would print otherwise than ``repr`` prints it.

    orjson prints every finite float as ``repr`` does except below 1e-4 (``0.00001`` for
    ``1e-05``, ``1.5e-7`` for ``1.5e-07``), and NaN/inf as ``null``. With plain names the only
    letters of the dump are the names' and those of such values, so two single-character
    counts find them (measured on a 15 kB dump: 7.5 µs each, against 12-18 µs for each
    substring search they replace): an ``e`` or ``l`` beyond the names' own, or ``0.0000``,
    sends the batch to the per-record path. ``translate`` then makes the field lists in one
    pass (12 µs, against 77 µs for two ``replace`` calls and a decode).
    """
    printed = orjson.dumps(sensors)
    count = len(sensors)
    if (
        printed.count(b"e") != count * names.e_count
        or printed.count(b"l") != count * names.l_count
        or b"0.0000" in printed
    ):
        return None
    return printed.translate(_TO_FIELDS, _NOT_FIELDS)[1:-2].decode().split("\n,")


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
        # A gateway's records repeat the same sensor names in the same order: one template
        # per name tuple.
        self._templates: dict[tuple[str, ...], _Template] = {}

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

    def series_key(self, site: str, asset: str) -> str | None:
        """The validated ``measurement,asset=..,site=.. `` prefix, or None for invalid names."""
        try:
            return self._series.get((site, asset)) or self._series_key(site, asset)
        except _DeclineError:
            return None

    def _template(self, names: tuple[str, ...]) -> _Template:
        if not self._learn_fields(names):
            raise _DeclineError
        if len(self._templates) >= _CACHE_MAX:
            self._templates.clear()
        escaped = (self._fields[n].replace("{", "{{").replace("}", "}}") for n in names)
        template = ",".join(key + "{}" for key in escaped)
        plain = all(_PLAIN_NAME.fullmatch(n) for n in names)
        joined = "".join(names)
        entry = _Template(template, plain, joined.count("e"), joined.count("l"))
        self._templates[names] = entry
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

    def convert_singles(
        self, payloads: list[bytes], series: list[str], *, default_time_ns: int, now: int
    ) -> list[bytes] | None:
        """The bodies of a read burst of single-reading messages, or None.

        ``series`` holds each message's series key (from its topic, see ``series_key``). Only
        for a burst whose payloads all parse and share one plain shape (``time`` and
        ``sensors``, the same plain sensor names, float values): then every check and the
        formatting are C-level passes over the whole burst, as for a uniform gateway batch.
        Anything else (None) goes message by message, which decides and words rejections.
        """
        try:
            first = orjson.loads(payloads[0])
            if type(first) is not dict or not _SINGLE_KEYS.issuperset(first):
                return None  # gateway batches, say: not worth parsing the rest twice
            documents = [first, *map(orjson.loads, payloads[1:])]
        except orjson.JSONDecodeError:
            return None
        context = _Context(
            "", "", "", default_time_ns, now - self._max_age_ns, now + self._max_future_ns
        )
        try:
            keys, sensors, names = self._batch_sensors(documents, context, _SINGLE_KEYS)
            stamps = self._batch_stamps(documents, keys, context)
        except (_NotUniformError, _DeclineError):  # invalid sensor names decline
            return None
        fields = _plain_fields(sensors, names)
        if fields is None:
            return None
        return list(map(str.encode, map("{}{} {}".format, series, fields, stamps)))

    def _uniform_batch(self, records: list[Any], c: _Context) -> str | None:
        """All lines of a gateway batch whose records share one plain shape, or None.

        Same checks as ``_line``, but each one is a C-level pass over the whole batch (``map``,
        ``set``, one ``orjson.dumps`` of every sensors dict) instead of a Python frame per
        record: measured on 100-reading batches, ~6 µs per record on the per-record path.
        Records with ``site``, ``quality``, ``precision`` or any other key, differing key sets or
        sensor names, or names that need escaping take the per-record path.
        """
        try:
            keys, sensors, names = self._batch_sensors(records, c, _BATCH_KEYS)
            stamps = self._batch_stamps(records, keys, c)
            series = self._batch_series(records, keys, c)
        except _NotUniformError:
            return None
        fields = _plain_fields(sensors, names)
        if fields is None:
            return None  # notations where orjson and repr differ: the per-record path
        return "\n".join(map("{}{} {}".format, series, fields, stamps))

    def _batch_sensors(
        self, records: list[Any], c: _Context, allowed: frozenset[str]
    ) -> tuple[Any, list[Any], _Template]:
        """(the records' one key tuple, their sensors dicts, their names' template) once all
        are checked; records may have the ``allowed`` keys and must have ``sensors``."""
        if set(map(type, records)) != _DICTS or c.envelope_site != c.site:
            raise _NotUniformError
        shapes = set(map(tuple, records))
        if len(shapes) != 1 or not allowed.issuperset(keys := shapes.pop()):
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
        template = self._templates.get(names) or self._template(names)
        if not template.plain:
            raise _NotUniformError  # names that need escaping
        return keys, sensors, template

    @staticmethod
    def _batch_stamps(records: list[Any], keys: Any, c: _Context) -> list[Any]:
        """The records' timestamps, checked like ``_line`` checks them."""
        if "time" not in keys:
            return [c.default_time_ns] * len(records)
        stamps = list(map(itemgetter("time"), records))
        if set(map(type, stamps)) != _INTS or min(stamps) < c.lo or max(stamps) > c.hi:
            raise _NotUniformError
        return stamps

    def _batch_series(self, records: list[Any], keys: Any, c: _Context) -> list[Any]:
        """The records' series keys, checked like ``_line`` checks them."""
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
        return series

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
        template, plain, _, _ = self._templates.get(tuple(sensors)) or self._template(
            tuple(sensors)
        )
        text = _fields_text(sensors, template) if plain else _values_text(values, template)
        quality = record.get("quality")
        if quality is not None:
            if type(quality) is not str or quality not in QUALITIES:
                raise _DeclineError
            text += f',quality="{quality}"'
        return f"{series}{text} {stamp}"
