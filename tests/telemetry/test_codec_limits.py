"""Property tests of the codecs at the limits of numbers and times: every input either decodes
or raises a PayloadError with a reason and a location, never another exception.

Issue 15, defect 3: year 0, 1e300 seconds, integers past Python's 4,300-digit conversion limit,
64-bit overflow in line protocol and 31 February each escaped as ValueError or OverflowError
(a 500 in the API, a crashed decode in the collector).
"""

from __future__ import annotations

import calendar
import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from telemetry.codecs.json_codec import decode_json
from telemetry.codecs.line_protocol import decode_line_protocol
from telemetry.errors import PayloadError
from telemetry.reading import DEFAULT_LIMITS, NS_PER_S, Reading
from telemetry.timeutil import PRECISION_TO_NS, parse_rfc3339_ns

NOW = 1_764_226_800 * NS_PER_S  # 2025-11-27T07:00:00Z
OLDEST = NOW - int(DEFAULT_LIMITS.max_age_s * NS_PER_S)
NEWEST = NOW + int(DEFAULT_LIMITS.max_future_s * NS_PER_S)
INT64 = range(-(2**63), 2**63)
UINT64 = range(2**64)
PRECISIONS = st.sampled_from(sorted(PRECISION_TO_NS))
# Integers (as their decimal text) around every edge a codec has: 64-bit bounds, float range,
# and Python's 4,300-digit conversion limit (so they stay text: int() of them would raise).
EDGE_INTS = st.one_of(
    st.integers().map(str),
    st.sampled_from([-(2**63) - 1, -(2**63), 2**63 - 1, 2**63, 2**64 - 1, 2**64, 0, -1]).map(str),
    st.integers(min_value=300, max_value=6000).map(lambda digits: "9" * digits),
    st.integers(min_value=300, max_value=6000).map(lambda digits: "-" + "9" * digits),
)
HUGE = 10**400  # stands for an integer past the digit limit: beyond every range tested here


def _int(text: str) -> int:
    """The integer of text, or ±HUGE when it is past the digit limit."""
    if len(text.removeprefix("-")) > 4000:
        return -HUGE if text.startswith("-") else HUGE
    return int(text)


ANY_FLOAT = st.floats(allow_nan=False)  # NaN cannot be compared; the tests below cover it


def _record(time_text: str, value_text: str = "1.5", precision: str = "ns") -> str:
    return (
        f'{{"site": "a", "asset": "b", "precision": "{precision}", '
        f'"time": {time_text}, "sensors": {{"x": {value_text}}}}}'
    )


def _check(error: PayloadError) -> None:
    assert error.reason, error
    assert error.where, error


def _outcome(decode: Callable[[], list[Reading]]) -> Reading | PayloadError:
    """The one reading decoded, or the PayloadError raised (any other exception propagates)."""
    try:
        (reading,) = decode()
    except PayloadError as exc:
        _check(exc)
        return exc
    return reading


@settings(max_examples=300, deadline=None)
@given(time_value=EDGE_INTS, precision=PRECISIONS)
@example(time_value="1" * 5000, precision="ns")
def test_json_integer_times(time_value: str, precision: str) -> None:
    scaled = _int(time_value) * PRECISION_TO_NS[precision]
    got = _outcome(lambda: decode_json(_record(time_value, precision=precision), now=NOW))
    in_range = OLDEST <= scaled <= NEWEST
    assert isinstance(got, Reading) == in_range
    if isinstance(got, Reading):
        assert got.time_ns == scaled


@settings(max_examples=300, deadline=None)
@given(
    time_value=st.one_of(ANY_FLOAT, st.sampled_from([1e300, -1e300, 1.7e308])), precision=PRECISIONS
)
@example(time_value=1e300, precision="s")
def test_json_float_times(time_value: float, precision: str) -> None:
    text = json.dumps(time_value)  # inf prints as Infinity, which the decoder refuses
    got = _outcome(lambda: decode_json(_record(text, precision=precision), now=NOW))
    if isinstance(got, Reading):
        assert math.isfinite(time_value)
        assert got.time_ns == round(time_value * PRECISION_TO_NS[precision])


@settings(max_examples=300, deadline=None)
@given(value=EDGE_INTS)
@example(value="7" * 4400)
def test_json_integer_values(value: str) -> None:
    got = _outcome(lambda: decode_json(_record(str(NOW), value), now=NOW))
    if isinstance(got, Reading):
        assert got.values["x"] == float(_int(value))
    else:
        assert got.reason == "non_finite"
        assert abs(_int(value)) > sys.float_info.max


@settings(max_examples=300, deadline=None)
@given(
    year=st.integers(0, 9999),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
    hour=st.integers(0, 24),
    minute=st.integers(0, 60),
    offset=st.sampled_from(["Z", "+00:00", "-05:30", "+14:00", "+24:00", "-00:60"]),
)
@example(year=0, month=1, day=1, hour=0, minute=0, offset="Z")
@example(year=2026, month=2, day=31, hour=0, minute=0, offset="Z")
@example(year=2024, month=2, day=29, hour=0, minute=0, offset="Z")
def test_rfc3339_fields_at_their_limits(  # noqa: PLR0917 (one argument per field)
    year: int, month: int, day: int, hour: int, minute: int, offset: str
) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{offset}"
    real = (
        year >= 1
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and offset not in ("+24:00", "-00:60")
    )
    if not real:
        with pytest.raises(PayloadError) as caught:
            parse_rfc3339_ns(text)
        assert caught.value.reason == "bad_time"
        return
    got = parse_rfc3339_ns(text)
    sign, hours, minutes = (
        (1, 0, 0)
        if offset == "Z"
        else (-1 if offset[0] == "-" else 1, int(offset[1:3]), int(offset[4:6]))
    )
    local = datetime(year, month, day, hour, minute, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    expected_s = local.days * 86400 + local.seconds - sign * (hours * 3600 + minutes * 60)
    assert got == expected_s * NS_PER_S


@settings(max_examples=300, deadline=None)
@given(stamp=EDGE_INTS, precision=PRECISIONS)
@example(stamp="9" * 5000, precision="ns")
def test_line_protocol_timestamps(stamp: str, precision: str) -> None:
    line = f"telemetry,site=a,asset=b x=1.5 {stamp}"
    scaled = _int(stamp) * PRECISION_TO_NS[precision]
    got = _outcome(lambda: decode_line_protocol(line, precision=precision, now=NOW))
    assert isinstance(got, Reading) == (_int(stamp) in INT64 and OLDEST <= scaled <= NEWEST)
    if isinstance(got, Reading):
        assert got.time_ns == scaled


@settings(max_examples=300, deadline=None)
@given(value=EDGE_INTS, suffix=st.sampled_from(["i", "u"]), escaped=st.booleans())
@example(value="9" * 400, suffix="i", escaped=False)
def test_line_protocol_integer_fields(value: str, suffix: str, escaped: bool) -> None:
    # An escaped tag sends the line down the careful scanner instead of the split fast path.
    tag = "b\\ 1" if escaped else "b"
    line = f"telemetry,site=a,asset={tag} x={value}{suffix} {NOW}"
    got = _outcome(lambda: decode_line_protocol(line, now=NOW))
    assert isinstance(got, Reading) == (_int(value) in (INT64 if suffix == "i" else UINT64))
    if isinstance(got, Reading):
        assert got.values["x"] == float(_int(value))


@pytest.mark.parametrize("digits", [4299, 4300, 4301, 10_000])
def test_digit_limit_edges(digits: int) -> None:
    """Right at Python's int conversion limit, in both codecs and both positions."""
    big = "9" * digits
    for decode in (
        lambda: decode_json(_record(big), now=NOW),
        lambda: decode_json(_record(str(NOW), big), now=NOW),
        lambda: decode_json(_record(str(NOW), "-" + big), now=NOW),
        lambda: decode_line_protocol(f"telemetry,site=a,asset=b x=1 {big}", now=NOW),
        lambda: decode_line_protocol(f"telemetry,site=a,asset=b x={big}i {NOW}", now=NOW),
        lambda: decode_line_protocol(f"telemetry,site=a,asset=b x={big}u {NOW}", now=NOW),
    ):
        with pytest.raises(PayloadError) as caught:
            decode()
        _check(caught.value)
