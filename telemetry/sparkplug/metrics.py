"""One Sparkplug B payload decoded, and each metric's value as a reading value or a skip reason.

What is stored: the numeric types and Boolean (as 0/1), the types a sensor reading can be.
Strings, texts, UUIDs, bytes, files, data sets, templates, property sets and arrays are skipped
with a counted reason, as are null values and the protocol's own control metrics
(``Node Control/…``, ``Device Control/…``, ``bdSeq``).

A value in the other field of its kind (a Float metric in ``double_value``, an Int32 in
``long_value``) is read as it is: the number is unambiguous. Signed integers travel in the
unsigned ``int_value`` / ``long_value`` fields: Eclipse Tahu's Java library writes the 32- or
64-bit two's complement, its Python library adds 2^width; masking to the type's width and
sign-extending reads both.

Metric names become sensor names by one rule (docs/collector.md, "Sparkplug B"): each ``/``
level is trimmed, lower-cased and its runs of anything but letters, digits, ``_`` and ``-``
become one ``_``; levels are joined with ``.``: ``Motor/Bearing Temp`` → ``motor.bearing_temp``.
A name that would clash with a reserved field (``time``, ``site``, ``asset``, ``quality``) gets
the prefix ``metric_``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import cast

from google.protobuf.message import DecodeError as ProtobufDecodeError

from telemetry.errors import DecodeError
from telemetry.reading import RESERVED_SENSOR_NAMES
from telemetry.sparkplug import sparkplug_b_pb2 as pb

Payload = pb.Payload
Metric = pb.Payload.Metric
DataType = pb.DataType

# Width in bits of each integer type, and whether it is signed.
_INTEGER_TYPES: dict[int, tuple[int, bool]] = {
    pb.Int8: (8, True),
    pb.Int16: (16, True),
    pb.Int32: (32, True),
    pb.Int64: (64, True),
    pb.UInt8: (8, False),
    pb.UInt16: (16, False),
    pb.UInt32: (32, False),
    pb.UInt64: (64, False),
}
_CONTROL_PREFIXES = ("Node Control/", "Device Control/")
_CONTROL_NAMES = frozenset(("bdSeq",))
_NOT_A_NAME_CHAR = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class MetricSkip:
    """Why a metric is not stored: a stable reason code (metrics label) and a detail."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class DecodedMetric:
    """A metric's value as a reading value."""

    value: float


def decode_payload(data: bytes) -> Payload:
    """Parse a Sparkplug B payload; raise DecodeError (reason ``undecodable``) if it is not one."""
    payload = Payload()
    try:
        payload.ParseFromString(data)
    except (ProtobufDecodeError, ValueError, RuntimeError) as exc:
        raise DecodeError(f"not a Sparkplug B payload: {exc}", reason="undecodable") from exc
    return payload


def is_control_metric(name: str) -> bool:
    """Whether a metric is the protocol's own (rebirth requests, the birth/death sequence)."""
    return name in _CONTROL_NAMES or name.startswith(_CONTROL_PREFIXES)


def decode_metric_value(metric: Metric, datatype: int) -> DecodedMetric | MetricSkip:
    """The metric's value as a float, or why it is not stored (``datatype`` from its birth)."""
    if metric.is_null:
        return MetricSkip("null_value", "the metric is null")
    if datatype in _INTEGER_TYPES:
        return _integer(metric, datatype)
    if datatype in (pb.Float, pb.Double):
        return _float(metric, datatype)
    if datatype == pb.Boolean:
        if metric.WhichOneof("value") != "boolean_value":
            return _wrong_field(metric, datatype)
        return DecodedMetric(1.0 if metric.boolean_value else 0.0)
    return MetricSkip("unsupported_type", f"data type {_type_name(datatype)} is not a sensor value")


def _integer(metric: Metric, datatype: int) -> DecodedMetric | MetricSkip:
    width, signed = _INTEGER_TYPES[datatype]
    field = metric.WhichOneof("value")
    if field not in ("int_value", "long_value"):
        return _wrong_field(metric, datatype)
    raw: int = getattr(metric, field) & ((1 << width) - 1)
    if signed and raw >= 1 << (width - 1):
        raw -= 1 << width
    return DecodedMetric(float(raw))


def _float(metric: Metric, datatype: int) -> DecodedMetric | MetricSkip:
    field = metric.WhichOneof("value")
    if field not in ("float_value", "double_value"):
        return _wrong_field(metric, datatype)
    value = float(getattr(metric, field))
    if not math.isfinite(value):
        return MetricSkip("non_finite", f"value {value!r} is not finite")
    return DecodedMetric(value)


def _wrong_field(metric: Metric, datatype: int) -> MetricSkip:
    return MetricSkip(
        "wrong_type",
        f"a {_type_name(datatype)} metric carries {metric.WhichOneof('value') or 'no value'}",
    )


def _type_name(datatype: int) -> str:
    if datatype in DataType.values():
        return DataType.Name(cast(pb.DataType.ValueType, datatype))
    return str(datatype)


def sensor_name(metric_name: str) -> str | None:
    """The sensor name a metric's values are stored under, or None if nothing is left of it."""
    levels = (_NOT_A_NAME_CHAR.sub("_", level.strip().lower()) for level in metric_name.split("/"))
    name = ".".join(level.strip("_") for level in levels if level.strip("_"))
    if not name:
        return None
    return f"metric_{name}" if name in RESERVED_SENSOR_NAMES else name
