"""InfluxDB line protocol: a full parser and a fast formatter for readings.

Escaping (InfluxDB's rules, applied strictly): in the measurement, ``,`` and space are escaped
with a backslash; in tag keys, tag values and field keys, ``,``, ``=`` and space; in string
field values, ``"`` and ``\\``. Unlike InfluxDB, which keeps a stray backslash literally, the
parser rejects a backslash that escapes nothing (``bad_escape``): our names never contain one,
so a stray backslash is always a client bug worth reporting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from telemetry.codecs.text import payload_text
from telemetry.errors import DecodeError, ValidationError
from telemetry.reading import DEFAULT_LIMITS, Reading, ValidationLimits, build_reading, now_ns
from telemetry.timeutil import precision_factor

MEASUREMENT = "telemetry"

FieldValue = float | int | str | bool

_MEASUREMENT_ESCAPES = frozenset(", ")
_KEY_ESCAPES = frozenset(",= ")
_TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
_FALSE = frozenset(("f", "F", "false", "False", "FALSE"))


@dataclass(slots=True)
class Point:
    """One parsed line: measurement, tags, typed fields and the raw timestamp (or None)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    timestamp: int | None


class _Scanner:
    """Walks one line, handling escapes; positions are reported 1-based in errors."""

    def __init__(self, line: str, line_no: int) -> None:
        self.line = line
        self.pos = 0
        self.line_no = line_no

    def error(
        self, message: str, reason: str = "bad_line_protocol", at: int | None = None
    ) -> DecodeError:
        column = (self.pos if at is None else at) + 1
        return DecodeError(message, where=f"line {self.line_no}, column {column}", reason=reason)

    def token(self, stops: str, escapes: frozenset[str], what: str) -> str:
        """Read up to an unescaped stop character, unescaping ``escapes``."""
        line, out, start = self.line, [], self.pos
        while self.pos < len(line):
            char = line[self.pos]
            if char == "\\":
                nxt = line[self.pos + 1] if self.pos + 1 < len(line) else ""
                if nxt not in escapes and nxt != "\\":
                    raise self.error(
                        f"backslash in {what} escapes {nxt!r}, which needs no escape",
                        reason="bad_escape",
                    )
                out.append(nxt)
                self.pos += 2
                continue
            if char in stops:
                break
            out.append(char)
            self.pos += 1
        if self.pos == start:
            raise self.error(f"{what} is empty")
        return "".join(out)

    def expect(self, char: str, what: str) -> None:
        if self.pos >= len(self.line) or self.line[self.pos] != char:
            found = self.line[self.pos] if self.pos < len(self.line) else "end of line"
            raise self.error(f"expected {char!r} {what}, found {found!r}")
        self.pos += 1

    def string_value(self) -> str:
        """Read a double-quoted string field value (the opening quote is current)."""
        opening = self.pos
        self.pos += 1
        out = []
        while self.pos < len(self.line):
            char = self.line[self.pos]
            if char == "\\" and self.pos + 1 < len(self.line) and self.line[self.pos + 1] in '"\\':
                out.append(self.line[self.pos + 1])
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.error("string field value has no closing quote", at=opening)


# InfluxDB's integer fields are int64 (`i`) and uint64 (`u`); timestamps are int64 nanoseconds.
_INT_RANGE = range(-(2**63), 2**63)
_UINT_RANGE = range(2**64)
# 19 digits hold every int64: a longer timestamp is out of range without converting it (int()
# of a 5,000-digit string costs time, and above 4,300 digits raises).
_MAX_TIMESTAMP_DIGITS = 19
_MAX_INT_DIGITS = 20  # uint64 has 20


def _field_value(raw: str, scanner: _Scanner, start: int) -> FieldValue:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if "_" in raw:  # Python's int()/float() accept digit separators; line protocol does not
        raise scanner.error(f"field value {raw!r} is not a number, boolean or string", at=start)
    try:
        if raw.endswith(("i", "u")):
            digits = raw[:-1].removeprefix("-")
            # Longer than any 64-bit integer: out of range without converting (see above).
            value = int(raw[:-1]) if len(digits) <= _MAX_INT_DIGITS else 2**64
            if value not in (_INT_RANGE if raw.endswith("i") else _UINT_RANGE):
                kind = "int64" if raw.endswith("i") else "uint64"
                raise scanner.error(
                    f"integer field value {raw[:40]!r} is outside the {kind} range",
                    reason="non_finite",
                    at=start,
                )
            return value
        number = float(raw)
    except ValueError:
        raise scanner.error(
            f"field value {raw[:40]!r} is not a number, boolean or string", at=start
        ) from None
    if not math.isfinite(number):
        raise scanner.error(f"field value {raw!r} is not finite", reason="non_finite", at=start)
    return number


def _fast_value(raw: str) -> FieldValue | None:
    """A numeric or boolean field value, or None when the careful path must decide."""
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    # Digit separators, and integers longer than any 64-bit one (sign, digits, suffix).
    if "_" in raw or (raw[-1] in "iu" and len(raw) > _MAX_INT_DIGITS + 2):
        return None
    try:
        if raw[-1] in "iu":
            number = int(raw[:-1])
            return number if number in (_INT_RANGE if raw[-1] == "i" else _UINT_RANGE) else None
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_simple(line: str) -> Point | None:
    """Split-based parse of a line without escapes or strings (the usual case); None otherwise."""
    parts = line.split(" ")
    if "\\" in line or '"' in line or len(parts) not in (2, 3):
        return None
    series = parts[0].split(",")
    tags = dict(pair.partition("=")[::2] for pair in series[1:])
    fields: dict[str, FieldValue] = {}
    for pair in parts[1].split(","):
        key, sep, raw = pair.partition("=")
        parsed = _fast_value(raw) if sep and key and raw else None
        if parsed is None:
            return None
        fields[key] = parsed
    stamp = parts[2] if len(parts) == 3 else None
    valid_tags = all(k and v for k, v in tags.items()) and len(tags) == len(series) - 1
    if not series[0] or not valid_tags or (stamp is not None and not _is_integer(stamp)):
        return None
    return Point(series[0], tags, fields, int(stamp) if stamp is not None else None)


def _is_integer(text: str) -> bool:
    digits = text.removeprefix("-")
    return digits.isdigit() and len(digits) <= _MAX_TIMESTAMP_DIGITS


def parse_line(line: str, line_no: int = 1) -> Point:
    """Parse one line of line protocol into a Point; raise DecodeError with line and column.

    Lines without escapes or string fields take a split-based fast path; anything it does not
    accept goes through the careful scanner, which also produces the located error messages.
    """
    simple = _parse_simple(line)
    if simple is not None:
        return simple
    scan = _Scanner(line, line_no)
    measurement = scan.token(", ", _MEASUREMENT_ESCAPES, "measurement")
    tags: dict[str, str] = {}
    while scan.pos < len(line) and line[scan.pos] == ",":
        scan.pos += 1
        key = scan.token("=, ", _KEY_ESCAPES, "tag key")
        scan.expect("=", "after tag key")
        tags[key] = scan.token(", ", _KEY_ESCAPES, "tag value")
    scan.expect(" ", "between tags and fields")
    fields: dict[str, FieldValue] = {}
    while True:
        key = scan.token("= ,", _KEY_ESCAPES, "field key")
        scan.expect("=", "after field key")
        if scan.pos < len(line) and line[scan.pos] == '"':
            fields[key] = scan.string_value()
        else:
            start = scan.pos
            while scan.pos < len(line) and line[scan.pos] not in ", ":
                scan.pos += 1
            if scan.pos == start:
                raise scan.error(f"field {key!r} has no value")
            fields[key] = _field_value(line[start : scan.pos], scan, start)
        if scan.pos < len(line) and line[scan.pos] == ",":
            scan.pos += 1
            continue
        break
    timestamp: int | None = None
    if scan.pos < len(line):
        scan.expect(" ", "before the timestamp")
        raw = line[scan.pos :]
        digits = raw.removeprefix("-")
        if not digits.isdigit():
            raise scan.error(f"timestamp {raw[:40]!r} is not an integer")
        if len(digits) > _MAX_TIMESTAMP_DIGITS or int(raw) not in _INT_RANGE:
            raise scan.error(
                f"timestamp {raw[:40]!r} is outside the int64 range", reason="time_out_of_range"
            )
        timestamp = int(raw)
    return Point(measurement, tags, fields, timestamp)


def parse_lines(text: str, *, max_lines: int = DEFAULT_LIMITS.max_batch) -> list[Point]:
    """Parse a body of lines; blank lines and ``#`` comments are skipped."""
    points: list[Point] = []
    for line_no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if len(points) >= max_lines:
            raise DecodeError(
                f"more than {max_lines} lines in one body",
                where=f"line {line_no}",
                reason="batch_too_large",
            )
        points.append(parse_line(line, line_no))
    return points


def decode_line_protocol(
    payload: bytes | str,
    *,
    precision: str = "ns",
    site: str | None = None,
    asset: str | None = None,
    default_time_ns: int | None = None,
    limits: ValidationLimits = DEFAULT_LIMITS,
    now: int | None = None,
) -> list[Reading]:
    """Decode a line-protocol body of measurement ``telemetry`` into readings (all or nothing).

    Tags ``site`` and ``asset`` may be omitted when the transport supplies them; other tags are
    ignored (gateways such as Telegraf add ``host``). Integer fields become floats; the string
    field ``quality`` is the reading's quality; booleans and other strings are rejected.
    """
    factor = precision_factor(precision)
    text = payload_text(payload)
    points = parse_lines(text, max_lines=limits.max_batch)
    if not points:
        raise DecodeError("the body holds no lines", where="body", reason="empty_batch")
    current = now_ns() if now is None else now
    readings = []
    for index, point in enumerate(points, start=1):
        where = f"point {index}"
        if point.measurement != MEASUREMENT:
            raise ValidationError(
                f"measurement {point.measurement!r} is not {MEASUREMENT!r}",
                where=where,
                reason="unknown_measurement",
            )
        point_site = point.tags.get("site", site)
        if site is not None and point_site != site:
            raise ValidationError(
                f"site {point_site!r} does not match the source's site {site!r}",
                where=where,
                reason="site_mismatch",
            )
        quality = point.fields.pop("quality", None)
        if point.timestamp is not None:
            time_ns = point.timestamp * factor
        elif default_time_ns is not None:
            time_ns = default_time_ns
        else:
            raise DecodeError("timestamp is missing", where=where, reason="missing_field")
        readings.append(
            build_reading(
                site=point_site,
                asset=point.tags.get("asset", asset),
                time_ns=time_ns,
                sensors={k: float(v) if type(v) is int else v for k, v in point.fields.items()},
                quality=quality,
                where=where,
                limits=limits,
                now=current,
            )
        )
    return readings


_TAG_TABLE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_MEASUREMENT_TABLE = str.maketrans({",": "\\,", " ": "\\ "})


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key."""
    return text.translate(_TAG_TABLE)


def escape_measurement(text: str) -> str:
    """Escape a measurement name."""
    return text.translate(_MEASUREMENT_TABLE)


def escape_string_value(text: str) -> str:
    """Escape a string field value (without the surrounding quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


class LineFormatter:
    """Formats readings as line protocol, caching each asset's escaped series key.

    Tags are written in key order (asset, site), as InfluxDB recommends for fast indexing;
    floats use ``repr`` (shortest text that round-trips exactly).
    """

    def __init__(self, measurement: str = MEASUREMENT) -> None:
        self._measurement = escape_measurement(measurement)
        self._series: dict[tuple[str, str], str] = {}
        self._keys: dict[str, str] = {}

    def series_key(self, site: str, asset: str) -> str:
        key = self._series.get((site, asset))
        if key is None:
            if len(self._series) > 100_000:  # bound the cache on fleets with churn
                self._series.clear()
            key = f"{self._measurement},asset={escape_key(asset)},site={escape_key(site)} "
            self._series[(site, asset)] = key
        return key

    def _field_key(self, name: str) -> str:
        key = self._keys.get(name)
        if key is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            key = self._keys[name] = escape_key(name)
        return key

    def line(self, reading: Reading) -> str:
        """One reading as one line (no trailing newline)."""
        fields = ",".join(f"{self._field_key(k)}={v!r}" for k, v in reading.values.items())
        if reading.quality is not None:
            fields += f',quality="{reading.quality}"'
        return f"{self.series_key(reading.site, reading.asset)}{fields} {reading.time_ns}"

    def lines(self, readings: Iterable[Reading]) -> bytes:
        """A newline-separated body for a write request."""
        return "\n".join(map(self.line, readings)).encode()


def format_line(reading: Reading) -> str:
    """Format one reading as line protocol (convenience wrapper)."""
    return LineFormatter().line(reading)
