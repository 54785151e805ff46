"""Payloads of every documented shape straight to line protocol, without building Readings.

Profiled on the bench payloads, the general path (``decode_json`` → ``Reading`` →
``LineFormatter``) spends most of its time on per-field Python work: location strings, a
``Reading`` per record, a validation call per value, then a second pass to format. This fast
codec handles the shapes README.md and docs/device_sims.md document (a single reading or a
batch envelope or array; ``site``/``asset`` in the body or from the transport; integer, float
or RFC 3339 ``time`` in any ``precision``, or none; ``quality`` on some records; differing
sensor names per record; line protocol, see ``fast_lp.py``) with one cached format template
per tuple of sensor names, and returns ``None`` for anything else, so the caller runs the
general path, which accepts or rejects with the exact reason. It never accepts what the
general path would reject, and its output is byte for byte what ``LineFormatter`` writes for
the same readings (tests/telemetry/test_fastpath.py checks both against the general path).
The collector's intake and the API's gateway push both use it: one implementation. Its caches
are plain dicts, bounded and cleared when full; any thread may use one codec (the API's
worker threads do): a cache cleared by another thread mid-batch is noticed and the batch takes
the per-record path. Helpers: fast_json.py (the orjson tricks), fast_time.py (RFC 3339 and
precisions), fast_lp.py (line protocol).
"""

from __future__ import annotations

import re
from itertools import chain, repeat
from typing import Any, NamedTuple

import orjson

from telemetry.codecs.fast_json import (
    DICTS,
    FLOATS,
    NUMBERS,
    STRS,
    NotUniformError,
    Template,
    as_floats,
    fields_text,
    plain_fields,
    quality_suffixes,
    record_factors,
    split_document,
    topic_series,
    values_text,
)
from telemetry.codecs.fast_lp import convert_line_burst, convert_lines
from telemetry.codecs.fast_time import DeclineError, TimeCache, scale_numbers, stamps_ns
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
from telemetry.timeutil import PRECISION_TO_NS

_CACHE_MAX = 100_000  # names and series repeat; bound the caches on fleets with churn
# Sensor names that JSON and line protocol both write verbatim (no quotes, escapes or separators).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class _Context(NamedTuple):
    """What every record of one payload is checked against."""

    site: str
    asset: str | None  # None: records must name theirs (the API's push)
    envelope_site: object
    factor: int  # the envelope's precision (records may override it)
    default_time_ns: int | None  # None: records must carry a time (the API's push)
    lo: int  # oldest acceptable timestamp
    hi: int  # newest acceptable timestamp
    assets: list[str] | None  # collects the records' assets when the caller asks for them


class FastCodec:
    """Formats documented payloads as line protocol; ``None`` means "use the general path"."""

    def __init__(self, limits: ValidationLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._measurement = escape_measurement(MEASUREMENT)
        self._max_age_ns = int(limits.max_age_s * NS_PER_S)
        self._max_future_ns = int(limits.max_future_s * NS_PER_S)
        # Only names that passed validation get in: membership is the validity check.
        self._series: dict[tuple[str, str], str] = {}
        self._fields: set[str] = set()
        # A gateway's records repeat the same sensor names in the same order: one template
        # per name tuple.
        self._templates: dict[tuple[str, ...], Template] = {}
        self.times = TimeCache()
        # Line protocol: series text of a line (with the transport's site and asset) → the
        # output series key and the line's asset (see fast_lp.py).
        self.lp_series: dict[tuple[str, str | None, str | None], tuple[str, str]] = {}

    def bounds(self, now: int) -> tuple[int, int]:
        """The oldest and newest acceptable timestamps at ``now``."""
        return now - self._max_age_ns, now + self._max_future_ns

    def learn_series(self, site: str, asset: str) -> str:
        """The series key of a valid site and asset; raises DeclineError for invalid names."""
        limits = self.limits
        try:
            validate_name(site, what="site", where="site", limits=limits)
            validate_name(asset, what="asset", where="asset", limits=limits)
        except ValidationError:
            raise DeclineError from None
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
                validate_name(name, what="sensor name", where="sensors", limits=self.limits)
            except ValidationError:
                return False
            if len(self._fields) >= _CACHE_MAX:
                self._fields.clear()
            self._fields.add(name)
        return True

    def series_key(self, site: str, asset: str) -> str | None:
        """The validated ``measurement,asset=..,site=.. `` prefix, or None for invalid names."""
        try:
            return self._series.get((site, asset)) or self.learn_series(site, asset)
        except DeclineError:
            return None

    def template(self, names: tuple[str, ...]) -> Template:
        """The format template of a tuple of sensor names; raises DeclineError for invalid ones."""
        entry = self._templates.get(names)
        if entry is not None:
            return entry
        if (
            not names
            or len(names) > self.limits.max_sensors
            or len(set(names)) != len(names)  # line protocol may repeat a key; JSON cannot
            or not self._learn_fields(names)
        ):
            raise DeclineError
        if len(self._templates) >= _CACHE_MAX:
            self._templates.clear()
        escaped = (escape_key(n).replace("{", "{{").replace("}", "}}") for n in names)
        template = ",".join(key + "={}" for key in escaped)
        plain = all(_PLAIN_NAME.fullmatch(n) for n in names)
        joined = "".join(names)
        entry = Template(template, plain, joined.count("e"), joined.count("l"))
        self._templates[names] = entry
        return entry

    def convert(
        self,
        payload: bytes,
        *,
        site: str,
        asset: str | None,
        default_time_ns: int | None,
        now: int,
        assets: list[str] | None = None,
    ) -> tuple[bytes, int] | None:
        """(line-protocol body, readings) for a JSON payload of a documented shape, else None.

        ``asset``/``default_time_ns`` None: records must name their asset and time (as
        ``decode_json`` without them). With ``assets``, the records' assets are appended to it.
        """
        try:
            records, envelope_site, factor = split_document(orjson.loads(payload), site)
        except (orjson.JSONDecodeError, DeclineError):  # invalid UTF-8/JSON, NaN, huge ints,
            return None  # other shapes: the general path decides and says why
        if not records or len(records) > self.limits.max_batch:
            return None
        lo, hi = self.bounds(now)
        context = _Context(
            site, asset, envelope_site, factor, default_time_ns, lo, hi,
            [] if assets is not None else None,
        )  # fmt: skip
        try:
            if len(records) == 1:  # most messages: skip the list and the join
                body = self._line(records[0], context)
            else:
                uniform = self._uniform_batch(records, context)
                if uniform is None:
                    if context.assets is not None:
                        context.assets.clear()
                    uniform = "\n".join([self._line(record, context) for record in records])
                body = uniform
        except DeclineError:
            return None
        if assets is not None and context.assets is not None:
            assets.extend(context.assets)
        return body.encode(), len(records)

    def convert_lines(
        self,
        payload: bytes,
        *,
        precision: str = "ns",
        site: str | None,
        asset: str | None,
        default_time_ns: int | None,
        now: int,
        assets: list[str] | None = None,
    ) -> tuple[bytes, int] | None:
        """(normalised body, readings) for a line-protocol payload of the usual shape, else
        None (see fast_lp.py); arguments as for ``decode_line_protocol`` and ``convert``."""
        try:
            return convert_lines(
                self, payload, precision=precision, site=site, asset=asset,
                default_time_ns=default_time_ns, now=now, assets=assets,
            )  # fmt: skip
        except DeclineError:
            return None

    def convert_line_burst(
        self, payloads: list[bytes], places: list[tuple[str, str]], *, default_time_ns: int,
        now: int,
    ) -> list[bytes] | None:  # fmt: skip
        """The bodies of a read burst of one-line line-protocol messages (``places``: each
        one's site and asset from its topic), converted as one body, or None."""
        try:
            return convert_line_burst(
                self, payloads, places, default_time_ns=default_time_ns, now=now
            )
        except DeclineError:
            return None

    def convert_singles(
        self,
        payloads: list[bytes],
        series: list[str],
        topics: list[tuple[str, str]],
        *,
        default_time_ns: int,
        now: int,
    ) -> list[bytes] | None:
        """The bodies of a read burst of single-reading messages, or None.

        ``topics`` holds each message's (site, asset) from its topic and ``series`` their
        series key (``series_key``). Only for a burst whose payloads all parse as single
        readings of plain sensor names and float values that name no other site or asset than
        their topic's: then every check and the formatting are C-level passes over the whole
        burst, as for a gateway batch. Anything else (None) goes message by message, which
        decides and words rejections.
        """
        try:
            first = orjson.loads(payloads[0])
            if type(first) is not dict or "readings" in first:
                return None  # gateway batches, say: not worth parsing the rest twice
            documents = [first, *map(orjson.loads, payloads[1:])]
        except orjson.JSONDecodeError:
            return None
        lo, hi = self.bounds(now)
        context = _Context("", "", "", 1, default_time_ns, lo, hi, None)
        try:
            lines = self._batch(documents, context, (series, topics))
        except (NotUniformError, DeclineError):  # invalid names decline
            return None
        return None if lines is None else list(map(str.encode, lines))

    def _uniform_batch(self, records: list[Any], c: _Context) -> str | None:
        """All lines of a batch taken by the whole-batch passes, or None."""
        try:
            lines = self._batch(records, c, None)
        except NotUniformError:
            return None
        return None if lines is None else "\n".join(lines)

    def _batch(
        self,
        records: list[Any],
        c: _Context,
        topics: tuple[list[str], list[tuple[str, str]]] | None,
    ) -> list[str] | None:
        """The lines of records checked like ``_line`` checks them, but each check a C-level
        pass over the whole batch (``map``, ``set``, one ``orjson.dumps`` of every sensors
        dict) instead of a Python frame per record: measured on 100-reading batches, ~6 µs per
        record on the per-record path. Records with names that need escaping, explicit nulls
        or a time on some records only take the per-record path (``NotUniformError``).

        ``topics``: a burst of single readings, with each message's series key and (site,
        asset) from its topic, instead of one site and asset for the whole batch.
        """
        if set(map(type, records)) != DICTS:
            raise NotUniformError
        keys = set().union(*records)
        if topics is not None and "readings" in keys:
            raise NotUniformError  # a batch among single readings
        fields = self._batch_fields(records)
        stamps = self._batch_stamps(records, keys, c)
        if topics is None:
            series = self._batch_series(records, keys, c)
        else:
            series = topic_series(records, keys, *topics)
        suffixes = quality_suffixes(records, keys)
        if fields is None:
            return None  # notations where orjson and repr differ: the per-record path
        if suffixes is None:
            return list(map("{}{} {}".format, series, fields, stamps))
        return list(map("{}{}{} {}".format, series, fields, suffixes, stamps))

    def _batch_fields(self, records: list[Any]) -> list[str] | None:
        """Each record's ``name=value,...`` (plain names, numbers), None where orjson's
        notation differs from repr's; ``NotUniformError`` for names that need escaping."""
        sensors: list[Any] = list(map(dict.get, records, repeat("sensors")))
        if set(map(type, sensors)) != DICTS:
            raise NotUniformError
        names = list(map(tuple, sensors))
        distinct = set(names)
        templates = {n: self._templates.get(n) or self.template(n) for n in distinct}
        if not all(t.plain for t in templates.values()):
            raise NotUniformError  # names that need escaping
        kinds = set(map(type, chain.from_iterable(map(dict.values, sensors))))
        if kinds != FLOATS:
            if not kinds <= NUMBERS:
                raise DeclineError  # booleans, strings, nulls: the general path words it
            sensors = [dict(zip(s, as_floats(s.values()), strict=True)) for s in sensors]
        if len(distinct) == 1:
            (template,) = templates.values()
            count = len(records)
            return plain_fields(sensors, count * template.e_count, count * template.l_count)
        e_count = sum(templates[n].e_count for n in names)
        l_count = sum(templates[n].l_count for n in names)
        return plain_fields(sensors, e_count, l_count)

    def _batch_stamps(self, records: list[Any], keys: set[Any], c: _Context) -> list[int]:
        """The records' timestamps in ns, checked (a precision is checked even where no time
        uses it, as the general path does)."""
        factors: list[int] | int = c.factor
        if "precision" in keys:
            factors = record_factors(records, c.factor)
        if "time" not in keys:
            if c.default_time_ns is None or not c.lo <= c.default_time_ns <= c.hi:
                raise DeclineError  # no time, no receipt time: the general path says "missing"
            return [c.default_time_ns] * len(records)
        raw = list(map(dict.get, records, repeat("time")))
        if None in raw:
            raise NotUniformError  # some records take the receipt time
        stamps = stamps_ns(raw, factors, self.times)
        if min(stamps) < c.lo or max(stamps) > c.hi:
            raise DeclineError
        return stamps

    def _batch_series(self, records: list[Any], keys: set[Any], c: _Context) -> list[str]:
        """The records' series keys (site and asset checked like ``_line`` checks them)."""
        if "site" in keys:
            sites = list(map(dict.get, records, repeat("site"), repeat(c.envelope_site)))
            if set(map(type, sites)) != STRS or set(sites) != {c.site}:
                raise DeclineError
        elif c.envelope_site != c.site:
            raise DeclineError
        if "asset" in keys:
            assets: list[Any] = list(map(dict.get, records, repeat("asset"), repeat(c.asset)))
            if set(map(type, assets)) != STRS:
                raise NotUniformError
        elif c.asset is None:
            raise DeclineError  # no asset: the general path says "missing"
        else:
            assets = [c.asset] * len(records)
        series_keys = list(zip(repeat(c.site), assets, strict=False))
        for site, asset in set(series_keys).difference(self._series):
            self.learn_series(site, asset)  # validates the names (raises DeclineError)
        series = list(map(self._series.get, series_keys))
        if None in series:  # the cache was reset mid-batch (a fleet with churn)
            raise NotUniformError
        if c.assets is not None:
            c.assets.extend(assets)
        return series  # type: ignore[return-value]

    def _record_stamp(self, record: dict[str, Any], c: _Context) -> int:
        """One record's timestamp in ns, checked as the general path checks it."""
        factor = c.factor
        if "precision" in record:
            precision = record["precision"]
            if type(precision) is not str or precision not in PRECISION_TO_NS:
                raise DeclineError
            factor = PRECISION_TO_NS[precision]
        stamp = record.get("time")
        if stamp is None:
            if c.default_time_ns is None:
                raise DeclineError
            stamp = c.default_time_ns
        elif type(stamp) is str:
            stamp = self.times.one(stamp)
        else:
            (stamp,) = scale_numbers([stamp], factor)
        if not c.lo <= stamp <= c.hi:
            raise DeclineError
        return int(stamp)

    def _line(self, record: Any, c: _Context) -> str:
        """One record as one line; raises DeclineError for anything but a documented shape."""
        if type(record) is not dict or record.get("site", c.envelope_site) != c.site:
            raise DeclineError
        asset = record.get("asset", c.asset)
        if type(asset) is not str:
            raise DeclineError
        series = self._series.get((c.site, asset)) or self.learn_series(c.site, asset)
        stamp = self._record_stamp(record, c)
        sensors = record.get("sensors")
        if type(sensors) is not dict or not sensors:
            raise DeclineError
        values: Any = sensors.values()
        kinds = set(map(type, values))
        if kinds != FLOATS:
            if not kinds <= NUMBERS:
                raise DeclineError
            values = as_floats(values)  # integers become floats, as in the general path
            sensors = dict(zip(sensors, values, strict=True))
        template, plain, _, _ = self._templates.get(tuple(sensors)) or self.template(tuple(sensors))
        text = fields_text(sensors, template) if plain else values_text(values, template)
        quality = record.get("quality")
        if quality is not None:
            if type(quality) is not str or quality not in QUALITIES:
                raise DeclineError
            text += f',quality="{quality}"'
        if c.assets is not None:
            c.assets.append(asset)
        return f"{series}{text} {stamp}"
