"""JSON codec: valid payloads decode exactly; each kind of bad input raises its own typed error."""

from __future__ import annotations

import json

import pytest

from telemetry.codecs.json_codec import decode_json, encode_json, encode_json_batch
from telemetry.errors import DecodeError, PayloadError, ValidationError
from telemetry.reading import Reading, ValidationLimits
from tests.fixtures.factories import make_reading

NOW = 1_795_000_000_000_000_000


def decode(payload: object, **kwargs: object) -> list[Reading]:
    raw = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return decode_json(raw, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_single_reading_with_rfc3339_nanoseconds() -> None:
    (reading,) = decode(
        {
            "site": "plant-a",
            "asset": "pump-01",
            "time": "2026-11-18T16:53:20.123456789Z",
            "sensors": {"vibration_rms": 2.31, "bearing_temp": 45},
            "quality": "uncertain",
        }
    )
    assert reading.site == "plant-a"
    assert reading.asset == "pump-01"
    assert reading.time_ns == 1_795_020_800_123_456_789
    assert reading.values == {"vibration_rms": 2.31, "bearing_temp": 45.0}
    assert isinstance(reading.values["bearing_temp"], float)
    assert reading.quality == "uncertain"


def test_rfc3339_offset_is_converted_to_utc() -> None:
    (a,) = decode(
        {"site": "s", "asset": "a", "time": "2026-11-18T17:53:20+01:00", "sensors": {"x": 1}}
    )
    (b,) = decode({"site": "s", "asset": "a", "time": "2026-11-18T16:53:20Z", "sensors": {"x": 1}})
    assert a.time_ns == b.time_ns


def test_batch_records_inherit_site_and_precision() -> None:
    readings = decode(
        {
            "site": "plant-a",
            "precision": "ms",
            "readings": [
                {"asset": "pump-01", "time": 1_795_000_000_123, "sensors": {"x": 1.5}},
                {"asset": "fan-02", "time": 1_795_000_000_124, "sensors": {"y": -2}},
            ],
        }
    )
    assert [(r.site, r.asset, r.time_ns) for r in readings] == [
        ("plant-a", "pump-01", 1_795_000_000_123_000_000),
        ("plant-a", "fan-02", 1_795_000_000_124_000_000),
    ]


def test_top_level_array_is_a_batch_and_topic_supplies_site_and_asset() -> None:
    readings = decode(
        [{"sensors": {"x": 1}}, {"asset": "other", "sensors": {"x": 2}}],
        site="plant-a",
        asset="gw-1",
        default_time_ns=NOW,
    )
    assert [(r.site, r.asset, r.time_ns) for r in readings] == [
        ("plant-a", "gw-1", NOW),
        ("plant-a", "other", NOW),
    ]


def test_encode_then_decode_is_identity() -> None:
    readings = [
        make_reading(asset='a b,c=d"é', time_ns=NOW + i, values={"t x": i / 3}) for i in range(5)
    ]
    assert decode_json(encode_json(readings[0]), now=NOW) == readings[:1]
    assert decode_json(encode_json_batch(readings), now=NOW) == readings


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    (reading,) = decode({"site": "s", "asset": "a", "time": NOW, "sensors": {"x": 1}, "fw": "2.1"})
    assert reading.values == {"x": 1.0}


# --- each kind of bad input: its own typed error, reason code and location ---------------------


def reject(
    payload: object, error: type[PayloadError], reason: str, where: str, text: str, **kwargs: object
) -> None:
    with pytest.raises(error) as caught:
        decode(payload, **kwargs)
    assert caught.value.reason == reason
    assert caught.value.where == where
    assert text in str(caught.value)


def test_malformed_json() -> None:
    reject(
        b'{"site": "s", "asset": ', DecodeError, "invalid_json", "line 1, column 24", "invalid JSON"
    )


def test_invalid_utf8() -> None:
    reject(b'{"site": "\xff\xfe"}', DecodeError, "invalid_utf8", "byte 10", "not valid UTF-8")


def test_missing_sensors() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW},
        DecodeError,
        "missing_field",
        "sensors",
        "sensors is missing",
    )


def test_missing_site() -> None:
    reject(
        {"asset": "a", "time": NOW, "sensors": {"x": 1}},
        DecodeError,
        "missing_field",
        "site",
        "site is missing",
    )


def test_missing_time_without_receipt_time() -> None:
    reject(
        {"site": "s", "asset": "a", "sensors": {"x": 1}},
        DecodeError,
        "missing_field",
        "time",
        "time is missing",
    )


def test_sensor_value_of_wrong_type() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": {"x": "1.5"}},
        ValidationError,
        "wrong_type",
        "sensors.x",
        "must be a number, got str",
    )


def test_boolean_is_not_a_number() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": {"x": True}},
        ValidationError,
        "wrong_type",
        "sensors.x",
        "got bool",
    )


def test_sensors_not_an_object() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": [1, 2]},
        ValidationError,
        "wrong_type",
        "sensors",
        "must be an object",
    )


def test_nan_literal() -> None:
    reject(
        b'{"site":"s","asset":"a","time":1,"sensors":{"x":NaN}}',
        DecodeError,
        "non_finite",
        "payload",
        "NaN is not a valid sensor value",
    )


def test_infinity_by_overflow() -> None:
    reject(
        b'{"site":"s","asset":"a","time":1795000000000000000,"sensors":{"x":1e400}}',
        ValidationError,
        "non_finite",
        "sensors.x",
        "must be finite",
    )


def test_empty_sensor_map() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": {}},
        ValidationError,
        "empty_sensors",
        "sensors",
        "at least one value",
    )


def test_too_many_sensors() -> None:
    sensors = {f"s{i}": 1.0 for i in range(257)}
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": sensors},
        ValidationError,
        "too_many_sensors",
        "sensors",
        "257 sensors",
    )


def test_empty_batch() -> None:
    reject({"site": "s", "readings": []}, DecodeError, "empty_batch", "readings", "no readings")


def test_oversized_batch() -> None:
    records = [{"asset": "a", "time": NOW, "sensors": {"x": 1}}] * 11
    reject(
        {"site": "s", "readings": records},
        DecodeError,
        "batch_too_large",
        "readings",
        "holds 11 readings; the limit is 10",
        limits=ValidationLimits(max_batch=10),
    )


def test_unknown_precision() -> None:
    reject(
        {"site": "s", "asset": "a", "time": 5, "precision": "minutes", "sensors": {"x": 1}},
        DecodeError,
        "unknown_precision",
        "precision",
        "unknown precision 'minutes'",
    )


def test_timestamp_far_in_the_future() -> None:
    # Seconds sent where nanoseconds were declared by default: 1970, far in the past.
    reject(
        {"site": "s", "asset": "a", "time": 1_795_000_000, "sensors": {"x": 1}},
        ValidationError,
        "time_out_of_range",
        "time",
        "in the past",
    )
    reject(
        {"site": "s", "asset": "a", "time": NOW + 2 * 86400 * 10**9, "sensors": {"x": 1}},
        ValidationError,
        "time_out_of_range",
        "time",
        "in the future",
    )


def test_bad_rfc3339() -> None:
    reject(
        {"site": "s", "asset": "a", "time": "yesterday", "sensors": {"x": 1}},
        DecodeError,
        "bad_time",
        "time",
        "not RFC 3339",
    )


def test_forbidden_character_in_asset_name() -> None:
    reject(
        {"site": "s", "asset": "pump/1", "time": NOW, "sensors": {"x": 1}},
        ValidationError,
        "bad_name",
        "asset",
        "forbidden character '/'",
    )


def test_reserved_sensor_name() -> None:
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": {"time": 1}},
        ValidationError,
        "bad_name",
        "sensors.time",
        "reserved",
    )


def test_overlong_name() -> None:
    reject(
        {"site": "s", "asset": "a" * 129, "time": NOW, "sensors": {"x": 1}},
        ValidationError,
        "bad_name",
        "asset",
        "129 characters",
    )


def test_site_not_matching_the_topic() -> None:
    reject(
        {"site": "other", "asset": "a", "time": NOW, "sensors": {"x": 1}},
        ValidationError,
        "site_mismatch",
        "site",
        "does not match",
        site="plant-a",
    )


def test_bad_record_in_batch_is_named_and_rejects_the_batch() -> None:
    records = [{"asset": "a", "time": NOW, "sensors": {"x": 1}}] * 3
    records.insert(2, {"asset": "a", "time": NOW, "sensors": {"x": None}})
    reject(
        {"site": "s", "readings": records},
        ValidationError,
        "wrong_type",
        "readings[2].sensors.x",
        "got NoneType",
    )


@pytest.mark.parametrize("quality", ["ok", ["good"], {"q": "good"}, 1])
def test_bad_quality(quality: object) -> None:
    # Lists and dicts are unhashable: they must be rejected as bad quality, not crash the check.
    reject(
        {"site": "s", "asset": "a", "time": NOW, "sensors": {"x": 1}, "quality": quality},
        ValidationError,
        "bad_quality",
        "quality",
        "good, uncertain, bad",
    )


def test_reading_not_an_object() -> None:
    reject(b"42", ValidationError, "wrong_type", "payload", "must be a JSON object")
