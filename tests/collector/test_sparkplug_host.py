"""The Sparkplug B host's rules, message by message: births define aliases, sequence gaps and
data before a birth ask for a rebirth and resolve nothing they cannot, deaths end sessions."""

from __future__ import annotations

import time

import pytest

from collector.sparkplug.host import AssetMapping, HostResult, SparkplugHost
from telemetry.errors import DecodeError
from telemetry.sparkplug import decode_metric_value, decode_payload, parse_topic, sensor_name
from telemetry.sparkplug import sparkplug_b_pb2 as pb
from telemetry.sparkplug.metrics import DecodedMetric, MetricSkip

NOW_MS = time.time_ns() // 1_000_000
RECEIVED_NS = NOW_MS * 1_000_000


def _metric(**fields: object) -> pb.Payload.Metric:
    return pb.Payload.Metric(**fields)  # type: ignore[arg-type]


def _payload(seq: int | None, *metrics: pb.Payload.Metric) -> pb.Payload:
    payload = pb.Payload(timestamp=NOW_MS, metrics=list(metrics))
    if seq is not None:
        payload.seq = seq
    return payload


def _nbirth(bd_seq: int = 0) -> pb.Payload:
    return _payload(
        0,
        _metric(name="bdSeq", datatype=pb.Int64, long_value=bd_seq),
        _metric(name="Node Control/Rebirth", datatype=pb.Boolean, boolean_value=False),
        _metric(name="Uptime", alias=1, datatype=pb.UInt32, int_value=12),
    )


def _dbirth(seq: int) -> pb.Payload:
    return _payload(
        seq,
        _metric(name="Motor/Bearing Temp", alias=10, datatype=pb.Float, float_value=41.5),
        _metric(name="Flow", alias=11, datatype=pb.Double, double_value=12.0),
        _metric(name="Running", alias=12, datatype=pb.Boolean, boolean_value=True),
        _metric(name="Label", alias=13, datatype=pb.String, string_value="P-101"),
    )


def _ddata(seq: int, temp: float, *, alias: int = 10) -> pb.Payload:
    return _payload(seq, _metric(alias=alias, timestamp=NOW_MS + 1, double_value=temp))


def _handle(host: SparkplugHost, topic: str, payload: pb.Payload, now_s: float = 0.0) -> HostResult:
    return host.handle(parse_topic(topic), payload, RECEIVED_NS, now_s)


NODE = "spBv1.0/plant-a/{}/gw-1"
DEVICE = "spBv1.0/plant-a/{}/gw-1/pump-01"


def _born_host() -> SparkplugHost:
    host = SparkplugHost()
    _handle(host, NODE.format("NBIRTH"), _nbirth())
    _handle(host, DEVICE.format("DBIRTH"), _dbirth(1))
    return host


def test_a_birth_defines_names_types_and_values_and_data_resolves_by_alias() -> None:
    host = SparkplugHost()
    node = _handle(host, NODE.format("NBIRTH"), _nbirth())
    assert [(r.site, r.asset, r.values) for r in node.readings] == [
        ("plant-a", "gw-1", {"uptime": 12.0})
    ]
    assert node.skipped == {"control_metric": 2}  # bdSeq and the rebirth switch
    assert [(e.asset, e.event, e.scope) for e in node.lifecycle] == [("gw-1", "birth", "node")]

    birth = _handle(host, DEVICE.format("DBIRTH"), _dbirth(1))
    assert birth.readings[0].values == {
        "motor.bearing_temp": 41.5,
        "flow": 12.0,
        "running": 1.0,
    }
    assert birth.skipped == {"unsupported_type": 1}  # the String metric
    data = _handle(host, DEVICE.format("DDATA"), _ddata(2, 43.0))
    assert not data.rebirth
    assert not data.unresolved
    (reading,) = data.readings
    assert (reading.asset, reading.values) == ("pump-01", {"motor.bearing_temp": 43.0})
    assert reading.time_ns == (NOW_MS + 1) * 1_000_000  # the metric's own timestamp


def test_data_before_any_birth_resolves_nothing_and_asks_for_one_rebirth() -> None:
    host = SparkplugHost(rebirth_interval_s=5.0)
    first = _handle(host, DEVICE.format("DDATA"), _ddata(7, 40.0), now_s=100.0)
    assert not first.readings
    assert [(u.reason, u.metrics) for u in first.unresolved] == [("no_birth", 1)]
    assert first.rebirth
    again = _handle(host, DEVICE.format("DDATA"), _ddata(8, 40.0), now_s=101.0)
    assert again.unresolved
    assert not again.rebirth
    later = _handle(host, DEVICE.format("DDATA"), _ddata(9, 40.0), now_s=106.0)
    assert later.rebirth


def test_a_sequence_gap_asks_for_a_rebirth_but_known_aliases_still_resolve() -> None:
    host = _born_host()
    gap = _handle(host, DEVICE.format("DDATA"), _ddata(5, 44.0))
    assert gap.sequence_gap
    assert gap.rebirth
    assert gap.readings[0].values == {"motor.bearing_temp": 44.0}
    unknown = _handle(host, DEVICE.format("DDATA"), _ddata(6, 1.0, alias=99))
    assert not unknown.sequence_gap
    assert not unknown.readings
    assert [u.reason for u in unknown.unresolved] == ["unknown_alias"]
    # The rebirth answers: a new session, sequence from 0, and the aliases again.
    _handle(host, NODE.format("NBIRTH"), _nbirth())
    _handle(host, DEVICE.format("DBIRTH"), _dbirth(1))
    assert not _handle(host, DEVICE.format("DDATA"), _ddata(2, 45.0)).sequence_gap


def test_the_sequence_number_wraps_after_255() -> None:
    host = _born_host()
    for seq in [*range(2, 256), 0, 1]:
        assert not _handle(host, DEVICE.format("DDATA"), _ddata(seq, 40.0)).sequence_gap


def test_a_device_needs_its_own_birth() -> None:
    host = SparkplugHost()
    _handle(host, NODE.format("NBIRTH"), _nbirth())
    result = _handle(host, DEVICE.format("DDATA"), _ddata(1, 40.0))
    assert [u.reason for u in result.unresolved] == ["no_birth"]
    assert result.rebirth


def test_ndeath_ends_the_session_of_its_own_bdseq_only() -> None:
    host = SparkplugHost()
    _handle(host, NODE.format("NBIRTH"), _nbirth(bd_seq=3))
    _handle(host, DEVICE.format("DBIRTH"), _dbirth(1))
    stale = _payload(None, _metric(name="bdSeq", datatype=pb.Int64, long_value=2))
    assert _handle(host, NODE.format("NDEATH"), stale).stale_death
    assert host.online_nodes() == [("plant-a", "gw-1")]
    death = _payload(None, _metric(name="bdSeq", datatype=pb.Int64, long_value=3))
    result = _handle(host, NODE.format("NDEATH"), death)
    assert sorted((e.asset, e.event, e.scope) for e in result.lifecycle) == [
        ("gw-1", "death", "node"),
        ("pump-01", "death", "device"),
    ]
    assert host.online_nodes() == []
    after = _handle(host, DEVICE.format("DDATA"), _ddata(2, 40.0))
    assert [u.reason for u in after.unresolved] == ["no_birth"]


def test_ddeath_ends_one_device() -> None:
    host = _born_host()
    result = _handle(host, DEVICE.format("DDEATH"), _payload(2))
    assert [(e.asset, e.event) for e in result.lifecycle] == [("pump-01", "death")]
    assert [u.reason for u in _handle(host, DEVICE.format("DDATA"), _ddata(3, 1.0)).unresolved] == [
        "no_birth"
    ]


def test_the_mapping_rule_is_configurable() -> None:
    host = SparkplugHost(AssetMapping(site="{group}", asset="{node}-{device}"))
    _handle(host, NODE.format("NBIRTH"), _nbirth())
    birth = _handle(host, DEVICE.format("DBIRTH"), _dbirth(1))
    assert birth.readings[0].asset == "gw-1-pump-01"


def test_signed_integers_of_both_tahu_encodings() -> None:
    java = _metric(int_value=2**32 - 5)  # Tahu Java: the 32-bit two's complement
    python = _metric(int_value=256 - 5)  # Tahu Python: value + 2^8 for an Int8
    assert decode_metric_value(java, pb.Int8) == DecodedMetric(-5.0)
    assert decode_metric_value(python, pb.Int8) == DecodedMetric(-5.0)
    assert decode_metric_value(_metric(long_value=2**64 - 1), pb.Int64) == DecodedMetric(-1.0)
    assert decode_metric_value(_metric(long_value=2**64 - 1), pb.UInt64) == DecodedMetric(
        float(2**64 - 1)
    )
    skip = decode_metric_value(_metric(string_value="x"), pb.Double)
    assert isinstance(skip, MetricSkip)
    assert skip.reason == "wrong_type"
    assert decode_metric_value(_metric(is_null=True), pb.Double) == MetricSkip(
        "null_value", "the metric is null"
    )


@pytest.mark.parametrize(
    ("metric", "sensor"),
    [
        ("Motor/Bearing Temp", "motor.bearing_temp"),
        ("Pump 1 /  Flow rate", "pump_1.flow_rate"),
        ("time", "metric_time"),
        ("Ölstand", "lstand"),
        ("///", None),
    ],
)
def test_metric_names_become_sensor_names_by_one_rule(metric: str, sensor: str | None) -> None:
    assert sensor_name(metric) == sensor


@pytest.mark.parametrize(
    "topic",
    [
        "spBv1.0/g/NDATA",
        "spBv1.0/g/XDATA/n",
        "spBv1.0/g/DDATA/n",  # a device message without a device
        "spBv1.0/g/NDATA/n/d",  # a node message with one
        "spAv1.0/g/NDATA/n",
        "spBv1.0//NDATA/n",
    ],
)
def test_topics_outside_the_namespace_are_refused(topic: str) -> None:
    with pytest.raises(DecodeError) as error:
        parse_topic(topic)
    assert error.value.reason == "bad_topic"


def test_a_truncated_payload_is_undecodable() -> None:
    whole = _dbirth(1).SerializeToString()
    with pytest.raises(DecodeError) as error:
        decode_payload(whole[: len(whole) // 2])
    assert error.value.reason == "undecodable"
