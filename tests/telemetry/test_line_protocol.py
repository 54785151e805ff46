"""Line protocol: full escaping round-trips; each malformed line gets a typed, located error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.codecs.line_protocol import (
    LineFormatter,
    decode_line_protocol,
    escape_string_value,
    parse_line,
    parse_lines,
)
from telemetry.errors import DecodeError, PayloadError, ValidationError
from telemetry.reading import Reading

NOW = 1_795_000_000_000_000_000


def test_parse_all_field_types_and_escapes() -> None:
    point = parse_line(
        r"my\ meas\,x,tag\ key=tag\,val\=ue,t2=v "
        r'f\=1=1.5,i=-3i,u=7u,b=t,B=FALSE,s="a \"q\" \\ b" 123'
    )
    assert point.measurement == "my meas,x"
    assert point.tags == {"tag key": "tag,val=ue", "t2": "v"}
    assert point.fields == {"f=1": 1.5, "i": -3, "u": 7, "b": True, "B": False, "s": 'a "q" \\ b'}
    assert point.timestamp == 123


def test_timestamp_is_optional_and_comments_and_blank_lines_are_skipped() -> None:
    points = parse_lines("# header\n\ntelemetry x=1\r\ntelemetry y=2e3 -5\n")
    assert [(p.fields, p.timestamp) for p in points] == [({"x": 1.0}, None), ({"y": 2000.0}, -5)]


def test_decode_uses_topic_defaults_and_precision() -> None:
    (reading,) = decode_line_protocol(
        b'telemetry,host=gw1 vibration=2i,temp=40.5,quality="bad" 1795000000',
        precision="s",
        site="plant-a",
        asset="pump-01",
        now=NOW,
    )
    assert reading == Reading("plant-a", "pump-01", NOW, {"vibration": 2.0, "temp": 40.5}, "bad")
    assert isinstance(reading.values["vibration"], float)


def test_format_escapes_every_special_character_and_round_trips() -> None:
    reading = Reading("site one", 'asset,=" ü', NOW, {"temp, °C=x": 1e16, 'q"': -0.1}, None)
    line = LineFormatter().line(reading)
    assert line == (
        f'telemetry,asset=asset\\,\\="\\ ü,site=site\\ one temp\\,\\ °C\\=x=1e+16,q"=-0.1 {NOW}'
    )
    assert decode_line_protocol(line, now=NOW) == [reading]


def test_escape_string_value() -> None:
    assert escape_string_value('a"b\\c') == 'a\\"b\\\\c'


names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/+#\\"
    ),
    min_size=1,
    max_size=20,
).filter(
    lambda s: s == s.strip() and s.isprintable() and s not in {"time", "site", "asset", "quality"}
)


@settings(max_examples=300, deadline=None)
@given(
    site=names,
    asset=names,
    sensors=st.dictionaries(
        names, st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5
    ),
)
def test_any_valid_reading_round_trips(site: str, asset: str, sensors: dict[str, float]) -> None:
    reading = Reading(site, asset, NOW, sensors)
    assert decode_line_protocol(LineFormatter().line(reading), now=NOW) == [reading]


# --- malformed lines: typed errors with line and column -----------------------------------------


def reject(
    body: str | bytes,
    error: type[PayloadError],
    reason: str,
    where: str,
    text: str,
    **kwargs: object,
) -> None:
    with pytest.raises(error) as caught:
        decode_line_protocol(body, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert caught.value.where == where
    assert text in str(caught.value)


def test_backslash_escaping_nothing_is_a_bad_escape() -> None:
    reject(
        "telemetry,site=a\\b,asset=x v=1 1",
        DecodeError,
        "bad_escape",
        "line 1, column 17",
        "escapes 'b'",
    )


def test_trailing_backslash_is_a_bad_escape() -> None:
    reject(
        "telemetry,site=a,asset=x v\\", DecodeError, "bad_escape", "line 1, column 27", "escapes ''"
    )


def test_missing_fields() -> None:
    reject(
        "telemetry,site=a,asset=b",
        DecodeError,
        "bad_line_protocol",
        "line 1, column 25",
        "expected ' ' between tags and fields",
    )


def test_field_without_value() -> None:
    reject(
        "telemetry,site=a,asset=b v= 1",
        DecodeError,
        "bad_line_protocol",
        "line 1, column 28",
        "field 'v' has no value",
    )


def test_field_value_not_a_number() -> None:
    reject(
        "telemetry,site=a,asset=b v=abc 1",
        DecodeError,
        "bad_line_protocol",
        "line 1, column 28",
        "'abc' is not a number",
    )


def test_unclosed_string() -> None:
    reject(
        'telemetry,site=a,asset=b v="abc 1',
        DecodeError,
        "bad_line_protocol",
        "line 1, column 28",
        "no closing quote",
    )


def test_timestamp_not_an_integer() -> None:
    reject(
        "telemetry,site=a,asset=b v=1 12.5",
        DecodeError,
        "bad_line_protocol",
        "line 1, column 30",
        "'12.5' is not an integer",
    )


def test_nan_field() -> None:
    reject(
        "telemetry,site=a,asset=b v=NaN 1",
        DecodeError,
        "non_finite",
        "line 1, column 28",
        "not finite",
    )


def test_error_names_the_line() -> None:
    good = f"telemetry,site=a,asset=b v=1 {NOW}\n"
    reject(
        good * 2 + "telemetry,site=a,asset=b v=\n",
        DecodeError,
        "bad_line_protocol",
        "line 3, column 28",
        "has no value",
    )


def test_boolean_sensor_rejected() -> None:
    reject(
        f"telemetry,site=a,asset=b v=true {NOW}",
        ValidationError,
        "wrong_type",
        "point 1.sensors.v",
        "got bool",
    )


def test_wrong_measurement() -> None:
    reject(
        f"cpu,site=a,asset=b v=1 {NOW}",
        ValidationError,
        "unknown_measurement",
        "point 1",
        "'cpu' is not 'telemetry'",
    )


def test_unknown_precision() -> None:
    reject(
        f"telemetry,site=a,asset=b v=1 {NOW}",
        DecodeError,
        "unknown_precision",
        "precision",
        "unknown precision 'm'",
        precision="m",
    )


def test_timestamp_out_of_range() -> None:
    reject(
        f"telemetry,site=a,asset=b v=1 {NOW}",
        ValidationError,
        "time_out_of_range",
        "point 1.time",
        "in the future",
        precision="ms",
    )


def test_missing_asset() -> None:
    reject(
        f"telemetry,site=a v=1 {NOW}",
        ValidationError,
        "wrong_type",
        "point 1.asset",
        "asset must be a string",
    )


def test_empty_body() -> None:
    reject("\n# only a comment\n", DecodeError, "empty_batch", "body", "no lines")


def test_too_many_lines() -> None:
    from telemetry.reading import ValidationLimits

    body = f"telemetry,site=a,asset=b v=1 {NOW}\n" * 4
    reject(
        body,
        DecodeError,
        "batch_too_large",
        "line 4",
        "more than 3 lines",
        limits=ValidationLimits(max_batch=3),
    )


def test_invalid_utf8() -> None:
    reject(b"telemetry,site=\xff v=1", DecodeError, "invalid_utf8", "byte 15", "not valid UTF-8")


def test_digit_separators_are_not_numbers() -> None:
    reject(
        f"telemetry,site=a,asset=b v=1_000 {NOW}",
        DecodeError,
        "bad_line_protocol",
        "line 1, column 28",
        "'1_000' is not a number",
    )
