"""A run of Sparkplug B data payloads decoded into columns in a few protobuf calls.

Profiled on the bench's DDATA (8 Double metrics by alias), the per-message path spent most of
its time not in protobuf's parser (0.6 µs a payload) but in Python around it: a wrapper
object for every metric and five attribute reads on each (3-4 µs a payload), then a
``Reading`` per payload. This module lets the protobuf library do the per-metric work in C,
with two views of Tahu's schema that it builds from the generated module's own descriptor
(field numbers and types cannot drift from ``sparkplug_b.proto``):

* ``Burst``: ``repeated Payload payloads = 1``. The run's payloads, framed by serialising them
  as ``bytes`` (bytes and embedded messages share a wire format), are parsed in one call; its
  ``ByteSize()`` equals the framed size only when re-serialising lost nothing, that is when
  no payload or metric holds a field twice (the parser keeps the last one and drops the
  others) and every number was minimally encoded. Only scalar and string fields are accepted
  below, whose re-encoding is never longer, so equal sizes prove "each field at most once".
* ``PayloadColumns``: the payload's fields ``repeated``, and its ``metrics`` field one
  non-repeated ``MetricColumns`` whose fields are all ``repeated``. Protobuf merges every
  occurrence of a non-repeated message field into one message, so parsing the run's payloads
  concatenated gives each field of every metric as one list, in order: ``alias`` holds every
  metric's alias, ``double_value`` every value.

With at most one occurrence of each field per metric (the size check) and as many aliases,
values and timestamps as metrics (the count checks), the i-th entry of each column belongs to
the i-th metric: the columns are exact, not a guess. Anything else (another value type, a
name, a null, a data set, a payload without ``seq``, a non-finite value, bytes that do not
parse) returns ``None`` and the caller decodes payload by payload as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from telemetry.sparkplug import sparkplug_b_pb2 as pb

_PACKAGE = "equipmon.sparkplug.columns"
_FIELD = descriptor_pb2.FieldDescriptorProto
_REPEATED, _OPTIONAL, _REQUIRED = (
    _FIELD.LABEL_REPEATED,
    _FIELD.LABEL_OPTIONAL,
    _FIELD.LABEL_REQUIRED,
)
# Metric fields a plain data metric by alias may hold besides alias, value and timestamp
# (they do not change what is stored: the birth's data type rules, as on the per-message
# path; a null is checked); every other field must be absent from the whole run.
_ALLOWED = frozenset(
    ("alias", "timestamp", "float_value", "double_value", "datatype", "is_historical",
     "is_transient", "is_null")
)  # fmt: skip
# Marks the end of each payload in the columns (see ``decode_columns``): a sequence number,
# alias or timestamp this large in a payload sends the run to the per-message path.
SENTINEL = 2**64 - 1
MAX_PAYLOADS = 4096


class _MetricColumns(Protocol):
    alias: Sequence[int]
    timestamp: Sequence[int]
    float_value: Sequence[float]
    double_value: Sequence[float]
    is_null: Sequence[bool]


class _PayloadColumns(Protocol):
    timestamp: Sequence[int]
    seq: Sequence[int]
    metrics: _MetricColumns


class _Repeated(Protocol):
    def __len__(self) -> int: ...


class _Required(Protocol):
    metrics: _Repeated

    def IsInitialized(self) -> bool: ...  # noqa: N802 (protobuf's name)


class _Frames(Protocol):
    payloads: list[bytes]

    def SerializeToString(self) -> bytes: ...  # noqa: N802 (protobuf's name)


def _views() -> tuple[type[Message], type[Message], dict[tuple[bool, bool], type[Message]]]:
    """The Frames and Columns classes and the required-field views, in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    file = descriptor_pb2.FileDescriptorProto(
        name="equipmon_sparkplug_columns.proto", package=_PACKAGE, syntax="proto2"
    )
    frames = file.message_type.add(name="Frames")
    frames.field.add(name="payloads", number=1, type=_FIELD.TYPE_BYTES, label=_REPEATED)
    metric = file.message_type.add(name="MetricColumns")
    for field in pb.Payload.Metric.DESCRIPTOR.fields:
        kind = field.type
        if kind in (_FIELD.TYPE_MESSAGE, _FIELD.TYPE_GROUP):
            kind = _FIELD.TYPE_BYTES  # only counted: a nested value is never plain data
        metric.field.add(name=field.name, number=field.number, type=kind, label=_REPEATED)
    payload = file.message_type.add(name="PayloadColumns")
    for field in pb.Payload.DESCRIPTOR.fields:
        if field.name == "metrics":  # one merged message: every metric's fields as columns
            payload.field.add(
                name="metrics",
                number=field.number,
                type=_FIELD.TYPE_MESSAGE,
                label=_OPTIONAL,
                type_name=f".{_PACKAGE}.MetricColumns",
            )
        else:
            payload.field.add(
                name=field.name, number=field.number, type=field.type, label=_REPEATED
            )
    columns = file.message_type.add(name="Columns")  # a run of frames, merged
    columns.field.add(
        name="payloads",
        number=1,
        type=_FIELD.TYPE_MESSAGE,
        label=_OPTIONAL,
        type_name=f".{_PACKAGE}.PayloadColumns",
    )
    fields = {f.name: f for f in pb.Payload.Metric.DESCRIPTOR.fields}
    names: dict[tuple[bool, bool], str] = {}
    for double in (True, False):
        for timed in (True, False):
            name = f"Metric{'Double' if double else 'Float'}{'Timed' if timed else ''}"
            required = file.message_type.add(name=name)
            for used in ("alias", "double_value" if double else "float_value", "timestamp"):
                f = fields[used]
                label = _REQUIRED if used != "timestamp" or timed else _OPTIONAL
                required.field.add(name=used, number=f.number, type=f.type, label=label)
            names[double, timed] = f"Payload{name[6:]}"
            view = file.message_type.add(name=names[double, timed])
            view.field.add(
                name="metrics",
                number=pb.Payload.DESCRIPTOR.fields_by_name["metrics"].number,
                type=_FIELD.TYPE_MESSAGE,
                label=_REPEATED,
                type_name=f".{_PACKAGE}.{name}",
            )
    pool.Add(file)

    def found(name: str) -> type[Message]:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))

    return found("Frames"), found("Columns"), {k: found(v) for k, v in names.items()}


_FramesView, _ColumnsView, _RequiredViews = _views()
_ABSENT = [f.name for f in pb.Payload.Metric.DESCRIPTOR.fields if f.name not in _ALLOWED]


def _separator() -> bytes:
    """A frame that ends a payload in the merged columns: its seq, timestamp and one alias."""
    frame = _ColumnsView()
    merged = cast(_PayloadColumns, getattr(frame, "payloads"))  # noqa: B009 (a view's field)
    cast(list[int], merged.seq).append(SENTINEL)
    cast(list[int], merged.timestamp).append(SENTINEL)
    cast(list[int], merged.metrics.alias).append(SENTINEL)
    return bytes(merged.SerializeToString())  # type: ignore[attr-defined]


_SEPARATOR = _separator()
_SENTINELS = [SENTINEL] * MAX_PAYLOADS


@dataclass(frozen=True, slots=True)
class Columns:
    """A run of data payloads, column by column (metrics in payload order)."""

    counts: list[int]  # metrics of each payload
    seqs: list[int]  # each payload's sequence number
    timestamps: list[int] | None  # each payload's timestamp (None: no payload has one)
    aliases: list[int]  # each metric's alias, each payload's followed by SENTINEL
    values: list[float]  # each metric's value (all Float or all Double fields), finite
    times: list[int] | None  # each metric's timestamp, none zero (None: no metric has one)


def decode_columns(payloads: Sequence[bytes]) -> Columns | None:
    """The run's payloads as columns, or None when one is not plain data by alias (one value
    field for all, finite, not null, no names or nested values, one ``seq`` each) or does not
    decode (the per-message path finds which and why)."""
    count = len(payloads)
    flat = _merged(payloads) if 0 < count <= MAX_PAYLOADS else None
    if flat is None:
        return None
    m = flat.metrics
    seqs = _one_each(list(flat.seq), count)
    stamps = list(flat.timestamp)
    if stamps.count(SENTINEL) == len(stamps) == count:
        timestamps = None  # no payload has one
    elif (timestamps := _one_each(stamps, count)) is None:
        return None
    doubles, floats = m.double_value, m.float_value
    if (
        seqs is None
        or bool(doubles) == bool(floats)  # none, or both kinds: which metric has which?
        or True in m.is_null
        or any(getattr(m, name) for name in _ABSENT)
    ):
        return None
    metrics = _metrics(payloads, double=bool(doubles), timed=bool(m.timestamp))
    marked = list(m.alias)
    counts = _counts(marked, count)
    values = list(doubles or floats)
    times = list(m.timestamp)
    total = sum(values)  # finite only if every value is (inf and NaN propagate)
    # Each metric has at least one alias, value (and timestamp); as many of each as there are
    # metrics: exactly one each.
    if (
        counts is None
        or 0 in counts
        or metrics != len(values)
        or metrics != len(marked) - count
        or (times and (len(times) != metrics or 0 in times))
        or total - total != 0.0
    ):
        return None
    return Columns(counts, seqs, timestamps, marked, values, times or None)


def _merged(payloads: Sequence[bytes]) -> _PayloadColumns | None:
    """Every payload parsed within its own frame, all merged, a separator after each."""
    frames = [_SEPARATOR] * (2 * len(payloads))
    frames[0::2] = payloads
    framed = cast(_Frames, _FramesView())
    framed.payloads.extend(frames)
    try:
        merged = _ColumnsView.FromString(framed.SerializeToString())
    except (ProtobufDecodeError, ValueError, RuntimeError):
        return None  # one is undecodable
    return cast(_PayloadColumns, getattr(merged, "payloads"))  # noqa: B009 (a view's field)


def _metrics(payloads: Sequence[bytes], *, double: bool, timed: bool) -> int:
    """How many metrics the payloads hold, each with an alias, a value of its kind (and a
    timestamp); -1 when one lacks a field. Called once each payload is known to decode."""
    view = _RequiredViews[double, timed]
    try:
        required = cast(_Required, view.FromString(b"".join(payloads)))
    except (ProtobufDecodeError, ValueError, RuntimeError):
        return -1
    return len(required.metrics) if required.IsInitialized() else -1


def _one_each(column: list[int], count: int) -> list[int] | None:
    """The payloads' values of a field each has once (``[v, S, v, S, ...]``), or None."""
    if len(column) != 2 * count or column[1::2] != _SENTINELS[:count]:
        return None
    values = column[0::2]
    return None if SENTINEL in values else values


def _counts(marked: list[int], count: int) -> list[int] | None:
    """The metrics of each payload, from the sentinel that ends each in the alias column."""
    if marked.count(SENTINEL) != count or not marked or marked[-1] != SENTINEL:
        return None
    size = marked.index(SENTINEL)
    if marked[size :: size + 1] == _SENTINELS[:count] and len(marked) == count * (size + 1):
        return [size] * count  # the usual run: every payload has as many metrics
    counts, start = [], 0
    for _ in range(count):
        end = marked.index(SENTINEL, start)
        counts.append(end - start)
        start = end + 1
    return counts
