"""Sparkplug columns: a run of payloads decoded in whole-run passes says exactly what decoding
each payload says, or declines (``None``) so the caller decodes them one by one.

The hand-built payloads below (a field twice, a truncated one, a sentinel value) are made by
concatenating protobuf's own serialisations, as a misbehaving edge node could send them.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.sparkplug import decode_payload
from telemetry.sparkplug import sparkplug_b_pb2 as pb
from telemetry.sparkplug.columns import SENTINEL, decode_columns

NOW_MS = 1_795_392_000_000
Metric = pb.Payload.Metric


def _payload(seq: int | None, *metrics: Metric, timestamp: int | None = NOW_MS) -> bytes:
    payload = pb.Payload(metrics=list(metrics))
    if seq is not None:
        payload.seq = seq
    if timestamp is not None:
        payload.timestamp = timestamp
    return payload.SerializeToString()


def _double(alias: int, value: float, stamp: int | None = NOW_MS) -> Metric:
    metric = Metric(alias=alias, datatype=pb.Double, double_value=value)
    if stamp is not None:
        metric.timestamp = stamp
    return metric


def _framed(seq: int, *metric_bytes: bytes) -> bytes:
    """A payload whose metrics are given as raw serialised bytes (which may repeat a field)."""
    out = pb.Payload(seq=seq, timestamp=NOW_MS).SerializeToString()
    for raw in metric_bytes:
        out += b"\x12" + bytes([len(raw)]) + raw  # field 2, length-delimited (short metrics)
    return out


def _per_payload(payloads: list[bytes]) -> dict[str, object]:
    """What decoding each payload says, in the columns' terms (alias tuples per payload)."""
    decoded = [decode_payload(p) for p in payloads]
    return {
        "counts": [len(p.metrics) for p in decoded],
        "seqs": [p.seq for p in decoded],
        "aliases": [a for p in decoded for a in [*(m.alias for m in p.metrics), SENTINEL]],
        "values": [getattr(m, m.WhichOneof("value") or "") for p in decoded for m in p.metrics],
        "times": [m.timestamp for p in decoded for m in p.metrics],
    }


def test_a_run_of_plain_ddata_is_its_columns() -> None:
    payloads = [
        _payload(1, _double(1, 1.5), _double(2, 2.5)),
        _payload(2, _double(3, -0.0, NOW_MS + 1)),
        _payload(3, _double(1, 1e300), _double(2, 5e-324), _double(4, 7.0)),
    ]
    columns = decode_columns(payloads)
    assert columns is not None
    expected = _per_payload(payloads)
    assert columns.counts == expected["counts"] == [2, 1, 3]
    assert columns.seqs == expected["seqs"]
    assert columns.aliases == expected["aliases"]
    assert columns.values == expected["values"]
    assert columns.times == expected["times"]
    assert columns.timestamps == [NOW_MS] * 3


def test_float_values_and_missing_timestamps() -> None:
    floats = [_payload(7, Metric(alias=5, float_value=0.1))]
    columns = decode_columns(floats)
    assert columns is not None
    assert columns.values == [decode_payload(floats[0]).metrics[0].float_value]
    assert columns.times is None
    assert columns.timestamps == [NOW_MS]
    bare = decode_columns([_payload(7, Metric(alias=5, double_value=1.0), timestamp=None)])
    assert bare is not None
    assert bare.timestamps is None


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([_payload(None, _double(1, 1.0))], id="no seq"),
        pytest.param([_payload(1)], id="no metrics"),
        pytest.param([_payload(1, _double(1, math.nan))], id="NaN"),
        pytest.param([_payload(1, _double(1, math.inf))], id="infinite"),
        pytest.param([_payload(1, _double(1, 1e308), _double(2, 1e308))], id="sum overflows"),
        pytest.param(
            [_payload(1, Metric(alias=1, double_value=1.0, is_null=True, timestamp=NOW_MS))],
            id="null",
        ),
        pytest.param([_payload(1, Metric(name="Flow", alias=1, double_value=1.0))], id="name"),
        pytest.param([_payload(1, _double(1, 1.0), Metric(alias=2, int_value=3))], id="int"),
        pytest.param(
            [_payload(1, _double(1, 1.0), Metric(alias=2, float_value=3.0, timestamp=NOW_MS))],
            id="double and float",
        ),
        pytest.param([_payload(1, _double(1, 1.0), Metric(double_value=2.0))], id="no alias"),
        pytest.param([_payload(1, _double(1, 1.0), _double(2, 2.0, None))], id="one untimed"),
        pytest.param([_payload(1, _double(1, 1.0, 0))], id="zero timestamp"),
        pytest.param([_payload(SENTINEL, _double(1, 1.0))], id="sentinel seq"),
        pytest.param([_payload(1, _double(SENTINEL, 1.0))], id="sentinel alias"),
        pytest.param([_payload(1, _double(1, 1.0)), b"\x0a\xff\xff"], id="undecodable"),
        pytest.param([_payload(1, _double(1, 1.0))[:-3]], id="truncated"),
        pytest.param(
            [_payload(1, _double(1, 1.0)), _payload(2, _double(1, 1.0), timestamp=None)],
            id="payload timestamp on some",
        ),
        pytest.param([], id="empty run"),
    ],
)
def test_what_is_not_plain_data_by_alias_is_declined(payloads: list[bytes]) -> None:
    assert decode_columns(payloads) is None


def test_a_field_twice_is_declined_not_realigned() -> None:
    # Metric 1 holds its alias twice (protobuf keeps the last), metric 2 none: as many aliases
    # as metrics, but the second alias is metric 1's, not metric 2's.
    first = _double(1, 1.0).SerializeToString() + Metric(alias=2).SerializeToString()
    second = Metric(timestamp=NOW_MS, double_value=2.0).SerializeToString()
    raw = _framed(1, first, second)
    decoded = decode_payload(raw)
    assert [m.alias for m in decoded.metrics] == [2, 0]  # what one-by-one decoding sees
    assert decode_columns([raw]) is None
    # The same for a payload's seq: twice in one payload, none in the next.
    twice = _payload(1, _double(1, 1.0)) + pb.Payload(seq=2).SerializeToString()
    assert decode_columns([twice, _payload(None, _double(1, 1.0))]) is None


def test_a_payload_never_reaches_into_the_next() -> None:
    # A payload that ends inside a field whose length covers the next payload's bytes.
    tail = _payload(2, _double(1, 2.0))
    cut = _payload(1, _double(1, 1.0)) + b"\x2a" + bytes([len(tail)])
    assert decode_columns([cut, tail]) is None


_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1e-05, 1e16, 5e-324]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(1, 2**40), _values, st.integers(1, 2**45)), max_size=6),
        min_size=1,
        max_size=8,
    )
)
def test_columns_agree_with_decoding_each_payload(
    runs: list[list[tuple[int, float, int]]],
) -> None:
    payloads = [
        _payload(seq, *(_double(alias, value, stamp) for alias, value, stamp in metrics))
        for seq, metrics in enumerate(runs)
    ]
    columns = decode_columns(payloads)
    if any(not metrics for metrics in runs) or sum(v for m in runs for _, v, _ in m) in (
        math.inf,
        -math.inf,
    ):
        assert columns is None
        return
    assert columns is not None
    expected = _per_payload(payloads)
    assert columns.counts == expected["counts"]
    assert columns.aliases == expected["aliases"]
    assert columns.values == expected["values"]
    assert columns.times == expected["times"]
