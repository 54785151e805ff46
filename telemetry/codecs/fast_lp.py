"""Line-protocol bodies of the usual shape to normalised line protocol, in whole-body passes.

The general path parses each line into a ``Point``, builds and validates a ``Reading`` and
formats it again (~25 µs a line of 8 fields). A body as gateways and Telegraf write it (no
backslash escapes, numeric fields, at most a ``quality="..."`` string, a timestamp on every
line or on none) is instead checked and rewritten with a few C-level passes over the whole
body: one regular expression validates every ``name=value`` pair, one ``float`` map parses
every value, one ``orjson.dumps`` of them shows whether each value is already written as
``repr`` writes it (then the field text is kept as it is), and the series text of each line
(``telemetry,site=..,asset=..,host=..``) maps through a cache to the output series key. What
the output must change, it changes as ``LineFormatter`` would: tag order and ignored tags (the
series key), values in another notation (``2``, ``2.50``, ``1e3``, ``2i``: ``repr``), the
quality field moved to the end, timestamps scaled by the precision. Anything else (escapes,
booleans, other strings, repeated keys, comments between lines...) raises ``DeclineError``, and
the general path decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import itemgetter, mul
from typing import TYPE_CHECKING

import orjson

from telemetry.codecs.fast_time import DeclineError
from telemetry.codecs.line_protocol import MEASUREMENT
from telemetry.reading import QUALITIES
from telemetry.timeutil import PRECISION_TO_NS

if TYPE_CHECKING:
    from telemetry.codecs.fastpath import FastCodec

_CACHE_MAX = 100_000
# Every line's field text, joined by newlines: non-empty names and values, one "=" per pair.
_PAIRS = re.compile(r"[^=,\n]+=[^=,\n]+(?:[,\n][^=,\n]+=[^=,\n]+)*")
_SERIES = itemgetter(0)
_FIELDS = itemgetter(1)
_STAMP = itemgetter(2)
_QUALITY_PAIRS = {f'quality="{q}"': f',quality="{q}"' for q in QUALITIES}
_MAX_TIMESTAMP_DIGITS = 19  # as the general parser: int64 nanoseconds
_MAX_INT_DIGITS = 20  # and integer fields: int64 (``i``) and uint64 (``u``)
_INT_RANGE = range(-(2**63), 2**63)
_UINT_RANGE = range(2**64)


def _number(raw: str) -> float:
    """A field value as the general parser reads it: ``2i`` and ``3u`` (64-bit integers)
    become floats; raises ValueError for what it would not read as a number."""
    if raw[-1] not in "iu":
        return float(raw)
    if len(raw[:-1].removeprefix("-")) > _MAX_INT_DIGITS:
        raise ValueError(raw)
    value = int(raw[:-1])
    if value not in (_INT_RANGE if raw[-1] == "i" else _UINT_RANGE):
        raise ValueError(raw)
    return float(value)


def _lines(payload: bytes) -> tuple[list[str], bool]:
    """The body's lines without blank and comment lines, and whether any holds a quote."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise DeclineError from None
    if "\\" in text or "\r" in text or "\t" in text:
        raise DeclineError  # escapes, CRLF bodies and tabs: the general parser's business
    lines = text.split("\n")
    if "" in lines or "#" in text:  # blank lines (a trailing newline) and comment lines
        lines = [line for line in lines if line and line[0] != "#"]
    return lines, '"' in text


def _take_quality(parts: list[list[str]]) -> list[str]:
    """Remove each line's ``quality="..."`` field (the only string field taken here) and
    return what LineFormatter appends for it ('' where a line has none)."""
    suffixes = []
    for part in parts:
        fields = part[1] if len(part) > 1 else ""
        if '"' not in fields:
            if any('"' in p for p in part):
                raise DeclineError
            suffixes.append("")
            continue
        pairs = fields.split(",")
        quality = [p for p in pairs if '"' in p]
        if len(quality) != 1 or quality[0] not in _QUALITY_PAIRS or '"' in part[0]:
            raise DeclineError  # other string fields, two qualities, quotes in a tag
        pairs.remove(quality[0])
        if not pairs:
            raise DeclineError  # a quality and no sensor
        part[1] = ",".join(pairs)
        suffixes.append(_QUALITY_PAIRS[quality[0]])
    return suffixes


def _series(
    codec: FastCodec, keys: list[tuple[str, str | None, str | None]], names: list[str]
) -> list[str]:
    """Each line's output series key, from its series text and transport site and asset;
    the lines' assets are appended to names."""
    cache = codec.lp_series
    found = list(map(cache.get, keys))
    if None in found:
        for key in set(keys).difference(cache):
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[key] = _learn_series(codec, *key)
        found = list(map(cache.get, keys))
        if None in found:
            raise DeclineError  # the cache was reset mid-body
    names.extend(map(itemgetter(1), found))  # type: ignore[arg-type]
    return list(map(itemgetter(0), found))  # type: ignore[arg-type]


def _learn_series(
    codec: FastCodec, text: str, site: str | None, asset: str | None
) -> tuple[str, str]:
    """As the general parser reads a series text (``_parse_simple``), then the reading's
    site and asset rules; raises DeclineError where it would not accept it this simply."""
    measurement, *pairs = text.split(",")
    tags = dict(pair.partition("=")[::2] for pair in pairs)
    if measurement != MEASUREMENT or len(tags) != len(pairs):
        raise DeclineError  # another measurement; a repeated tag (the careful parser's business)
    if not all(k and v for k, v in tags.items()):
        raise DeclineError
    line_site = tags.get("site", site)
    line_asset = tags.get("asset", asset)
    if line_site is None or line_asset is None or (site is not None and line_site != site):
        raise DeclineError
    return codec.learn_series(line_site, line_asset), line_asset


def _fields_out(codec: FastCodec, field_texts: list[str]) -> list[str]:
    """Each line's fields as LineFormatter writes them (the text itself where every value is
    already written as repr writes it); raises DeclineError for what is not that simple."""
    joined = "\n".join(field_texts)
    if not _PAIRS.fullmatch(joined):
        raise DeclineError
    tokens = joined.replace("\n", ",").replace("=", ",").split(",")
    names, values = tokens[0::2], tokens[1::2]
    commas = list(map(str.count, field_texts, repeat(",")))
    if len(set(commas)) == 1:
        width = commas[0] + 1
        name_tuples = list(zip(*[iter(names)] * width, strict=True))
        ends = list(range(width, len(names) + 1, width))
    else:
        ends = list(accumulate(c + 1 for c in commas))
        name_tuples = [tuple(names[a:b]) for a, b in zip([0, *ends], ends, strict=False)]
    templates = {n: codec.template(n) for n in set(name_tuples)}  # validates the names
    value_text = ",".join(values)
    if "_" in value_text:
        raise DeclineError  # float() takes digit separators; line protocol does not
    try:  # booleans and strings: ValueError
        parse = _number if "i" in value_text or "u" in value_text else float
        floats = list(map(parse, values))
    except ValueError:
        raise DeclineError from None
    printed = orjson.dumps(floats)
    if b"null" in printed:
        raise DeclineError  # inf, nan: not finite
    if printed[1:-1] == value_text.encode() and b"e" not in printed and b"0.0000" not in printed:
        return field_texts
    # Not every value is written as repr writes it: write each line's values again.
    return [
        templates[n].template.format(*map(repr, floats[b - len(n) : b]))
        for n, b in zip(name_tuples, ends, strict=True)
    ]


def _stamps_out(texts: list[str], factor: int, lo: int, hi: int) -> list[str]:
    """Each line's timestamp in ns, checked as the general path checks it."""
    digits = "".join(texts)
    if not digits.isascii() or not digits.isdigit():
        raise DeclineError  # negative, or not a number: the general path words it
    lengths = set(map(len, texts))
    if min(lengths) == 0 or max(lengths) > _MAX_TIMESTAMP_DIGITS:
        raise DeclineError
    stamps = list(map(int, texts))
    if factor != 1:
        stamps = list(map(mul, stamps, repeat(factor)))
    if min(stamps) < lo or max(stamps) > hi:
        raise DeclineError
    return list(map(str, stamps))


def convert_lines(
    codec: FastCodec,
    payload: bytes,
    *,
    precision: str,
    site: str | None,
    asset: str | None,
    default_time_ns: int | None,
    now: int,
    assets: list[str] | None,
) -> tuple[bytes, int]:
    """(body as LineFormatter writes it, readings); raises DeclineError (see the docstring)."""
    factor = PRECISION_TO_NS.get(precision)
    lines, quoted = _lines(payload)
    if factor is None or not lines or len(lines) > codec.limits.max_batch:
        raise DeclineError
    line_assets: list[str] = []
    out = _convert(codec, lines, quoted, factor, repeat(site), repeat(asset), line_assets,
                   default_time_ns=default_time_ns, now=now)  # fmt: skip
    if assets is not None:
        assets.extend(line_assets)
    return "\n".join(out).encode(), len(lines)


def convert_line_burst(
    codec: FastCodec,
    payloads: list[bytes],
    places: list[tuple[str, str]],
    *,
    default_time_ns: int,
    now: int,
) -> list[bytes]:
    """The bodies of a read burst of one-line messages (``places``: each one's site and asset
    from its topic), converted as one body; raises DeclineError where a message holds more
    than one line or anything ``convert_lines`` would decline."""
    payloads = list(map(bytes.rstrip, payloads, repeat(b"\n")))  # trailing blank lines
    joined = b"\n".join(payloads)
    if b"" in payloads or joined.count(b"\n") != len(payloads) - 1:
        raise DeclineError
    lines, quoted = _lines(joined)
    if len(lines) != len(payloads):
        raise DeclineError  # a comment line
    out = _convert(
        codec, lines, quoted, 1, map(itemgetter(0), places), map(itemgetter(1), places), [],
        default_time_ns=default_time_ns, now=now,
    )  # fmt: skip
    return list(map(str.encode, out))


def _convert(  # noqa: PLR0917 (the body's lines and their transport, positionally)
    codec: FastCodec,
    lines: list[str],
    quoted: bool,
    factor: int,
    sites: Iterable[str | None],
    assets: Iterable[str | None],
    line_assets: list[str],
    *,
    default_time_ns: int | None,
    now: int,
) -> list[str]:
    """The lines as LineFormatter writes them (each line's transport site and asset given);
    the lines' assets are appended to ``line_assets``."""
    parts = list(map(str.split, lines, repeat(" ")))
    widths = set(map(len, parts))
    if len(widths) != 1 or not widths <= {2, 3}:
        raise DeclineError  # spaces in a string, missing fields, some lines without a time
    suffixes = _take_quality(parts) if quoted else None
    field_texts = _fields_out(codec, list(map(_FIELDS, parts)))
    lo, hi = codec.bounds(now)
    if widths == {3}:
        stamp_out = _stamps_out(list(map(_STAMP, parts)), factor, lo, hi)
    elif default_time_ns is None or not lo <= default_time_ns <= hi:
        raise DeclineError
    else:
        stamp_out = [str(default_time_ns)] * len(lines)
    keys = list(zip(map(_SERIES, parts), sites, assets, strict=False))
    series = _series(codec, keys, line_assets)
    if suffixes is None:
        return list(map("{}{} {}".format, series, field_texts, stamp_out))
    return list(map("{}{}{} {}".format, series, field_texts, suffixes, stamp_out))
