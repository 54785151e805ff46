"""The JSON fast path never disagrees with the general path (decode_json + LineFormatter).

For every payload, either the fast path declines (``None``) or it produces exactly the bytes
the general path produces; and it never accepts a payload the general path rejects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import FastCodec
from telemetry.codecs.json_codec import decode_json
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.errors import PayloadError

NOW = 1_795_392_000_000_000_000
DAY = 86_400 * 10**9


def general(payload: bytes) -> bytes | None:
    """What the general path makes of a payload on topic site s1, asset a1 (None: rejected)."""
    try:
        readings = decode_json(payload, site="s1", asset="a1", default_time_ns=NOW, now=NOW)
    except PayloadError:
        return None
    except TypeError:  # an unhashable quality: telemetry raises it (intake: internal_error)
        return None
    return LineFormatter().lines(readings)


def check(payload: bytes) -> bytes | None:
    """Assert the fast path agrees with the general path; return the fast path's body."""
    fast = FastCodec().convert(payload, site="s1", asset="a1", default_time_ns=NOW, now=NOW)
    expected = general(payload)
    if fast is not None:
        assert expected is not None, (
            f"fast path accepted what the general path rejects: {payload!r}"
        )
        assert fast[0] == expected
        assert fast[1] == expected.count(b"\n") + 1
    return fast[0] if fast is not None else None


GOOD: list[Any] = [
    {"time": NOW, "sensors": {"v": 1.5, "temp": -40.25}},
    {"sensors": {"v": 1.5}},  # receipt time
    {"time": NOW, "sensors": {"a b,c=d": 2.0}, "quality": "uncertain", "extra": [1]},
    {"site": "s1", "asset": "pump 7", "time": NOW - 5, "sensors": {"v": 1e-300}},
    {
        "readings": [
            {"asset": f"fan-{k}", "time": NOW + k, "sensors": {"v": k + 0.5}} for k in range(5)
        ]
    },
    {"site": "s1", "readings": [{"time": NOW, "sensors": {"v": 0.1}}]},
    [{"time": NOW, "sensors": {"v": 0.1}}, {"asset": "b", "time": NOW, "sensors": {"w": 2.5}}],
]

# Each is either declined or rejected by both paths, or accepted identically (ints, precision).
ODD: list[Any] = [
    {"time": NOW, "sensors": {"v": 1}},  # an int value: general path writes 1.0
    {"time": NOW, "sensors": {"v": True}},
    {"time": NOW, "sensors": {"v": "1.5"}},
    {"time": NOW, "sensors": {"v": 1e308, "w": 1e308}},  # finite, but the sum overflows
    {"time": NOW, "sensors": {}},
    {"time": NOW, "sensors": {"time": 1.0}},
    {"time": NOW, "sensors": {"a/b": 1.0}},
    {"time": NOW, "sensors": {" v": 1.0}},
    {"time": NOW, "sensors": {"v": 1.0}, "quality": "great"},
    {"time": NOW, "sensors": {"v": 1.0}, "quality": ["good"]},
    {"time": NOW, "sensors": {"v": 1.0}, "site": "s2"},
    {"time": NOW, "sensors": {"v": 1.0}, "site": None},
    {"time": NOW, "sensors": {"v": 1.0}, "asset": 7},
    {"time": NOW, "sensors": {"v": 1.0}, "asset": ""},
    {"time": NOW + 2 * DAY, "sensors": {"v": 1.0}},
    {"time": NOW - 11 * 366 * DAY, "sensors": {"v": 1.0}},
    {"time": True, "sensors": {"v": 1.0}},
    {"time": 1795392000.5, "precision": "s", "sensors": {"v": 1.0}},
    {"time": "2026-11-23T00:00:00Z", "sensors": {"v": 1.0}},
    {"time": None, "sensors": {"v": 1.0}},
    {"time": NOW, "sensors": [1.0]},
    {"time": NOW},
    {"readings": []},
    {"readings": {"a": 1}},
    {"precision": "ms", "readings": [{"time": NOW // 10**6, "sensors": {"v": 1.0}}]},
    {"site": "s2", "readings": [{"time": NOW, "sensors": {"v": 0.1}}]},
    [],
    [1, 2],
    "text",
    {"time": NOW, "sensors": {f"s{i}": 1.0 for i in range(300)}},
]


@pytest.mark.parametrize("document", GOOD)
def test_common_shapes_take_the_fast_path_with_identical_output(document: Any) -> None:
    assert check(json.dumps(document).encode()) is not None


@pytest.mark.parametrize("document", ODD)
def test_unusual_shapes_agree_with_the_general_path(document: Any) -> None:
    check(json.dumps(document).encode())


@pytest.mark.parametrize(
    "payload",
    [b'{"time": 1, "sensors": {"v": NaN}}', b'{"sensors": {"v": Infinity}}', b"\xff\xfe{}",
     b'{"sensors": {"v": 1e999}}', b"{", b"\xef\xbb\xbf{}", b"[" * 100_000],
)  # fmt: skip
def test_hostile_payloads_are_declined(payload: bytes) -> None:
    assert check(payload) is None


_names = st.sampled_from(["v", "temp", "a b", "x,y", "time", "q=1", "", "é", "a/b"])
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400),
    st.booleans(), st.text(max_size=3), st.none(),
)  # fmt: skip
_records = st.fixed_dictionaries(
    {"sensors": st.dictionaries(_names, _values, max_size=4)},
    optional={"time": st.one_of(st.integers(NOW - 2 * DAY, NOW + 2 * DAY), st.floats()),
              "asset": st.sampled_from(["a1", "b 2", "", "x/y"]),
              "site": st.sampled_from(["s1", "s2"]),
              "quality": st.sampled_from(["good", "bad", "meh"])},
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(_records, st.lists(_records, max_size=3),
                 st.fixed_dictionaries({"readings": st.lists(_records, max_size=3)})))  # fmt: skip
def test_random_documents_agree_with_the_general_path(document: Any) -> None:
    check(json.dumps(document).encode())


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8),
    st.sampled_from(["s", "e-", "s,"]),  # plain names, plain but matching a notation mark, escaped
)
def test_every_finite_float_is_printed_as_repr_prints_it(values: list[float], stem: str) -> None:
    """orjson prints floats for speed; wherever it would differ from ``repr`` (exponents, values
    below 1e-4) the fast path must notice and use ``repr``: the bytes never differ."""
    sensors = {f"{stem}{i}": value for i, value in enumerate(values)}
    body = check(json.dumps({"time": NOW, "sensors": sensors}).encode())
    assert body is not None  # finite floats are the common shape: always the fast path
    fields = body.split(b" ")[1].split(b",")
    key = stem.replace(",", "\\,")
    assert [f.split(b"=")[1] for f in fields if b"=" in f] == [repr(v).encode() for v in values]
    assert body.split(b" ")[1].startswith(f"{key}0=".encode())


_UNIFORM = st.builds(
    lambda values, names, assets, timed: {
        "readings": [
            {
                **({"asset": asset} if asset else {}),
                **({"time": NOW + k} if timed else {}),
                "sensors": dict(zip(names, row, strict=False)),
            }
            for k, (asset, row) in enumerate(zip(assets, values, strict=False))
        ]
    },
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
             min_size=2, max_size=6),
    st.sampled_from([("a", "b", "c"), ("flow", "e-1", "x.y_z")]),
    st.lists(st.sampled_from(["", "pump-1", "fan_2"]), min_size=6, max_size=6),
    st.booleans(),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_UNIFORM)
def test_uniform_gateway_batches_agree_with_the_general_path(document: dict[str, Any]) -> None:
    body = check(json.dumps(document).encode())
    assert body is not None  # finite floats and valid names: the fast path, uniform or not


def test_uniform_batches_skip_the_per_record_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = FastCodec()
    batch = {"readings": [{"asset": f"p{k}", "time": NOW + k, "sensors": {"v": k + 0.5, "t": 20.25}}
                          for k in range(50)]}  # fmt: skip
    payload = json.dumps(batch).encode()

    def per_record(*_: Any) -> str:
        raise AssertionError("the per-record path ran")

    monkeypatch.setattr(FastCodec, "_line", per_record)
    out = fast.convert(payload, site="s1", asset="a1", default_time_ns=NOW, now=NOW)
    monkeypatch.undo()
    assert out is not None
    assert out[0] == general(payload)
    assert out[1] == 50


@pytest.mark.parametrize(
    "records",
    [
        [
            {"asset": "p", "sensors": {"v": 1.5}},
            {"asset": "p", "sensors": {"v": 1e-05}},
        ],  # notation
        [{"sensors": {"v": 1.5}}, {"sensors": {"v": 2.5}, "quality": "bad"}],  # key sets differ
        [{"sensors": {"v": 1.5}}, {"sensors": {"w": 2.5}}],  # names differ
        [{"sensors": {"a b": 1.5}}, {"sensors": {"a b": 2.5}}],  # names need escaping
        [{"time": NOW, "sensors": {"v": 1.5}}, {"time": NOW + 1, "sensors": {"v": 2}}],  # an int
        [{"time": NOW, "sensors": {"v": 1.5}}, {"time": 5, "sensors": {"v": 2.5}}],  # too old
        [
            {"asset": "p", "sensors": {"v": 1.5}},
            {"asset": "x/y", "sensors": {"v": 2.5}},
        ],  # bad name
        [{"asset": "p", "sensors": {"v": 1.5}}, {"asset": 7, "sensors": {"v": 2.5}}],  # wrong type
    ],
)
def test_batches_that_are_not_uniform_still_agree(records: list[dict[str, Any]]) -> None:
    check(json.dumps({"readings": records}).encode())
