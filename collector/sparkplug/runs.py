"""A run of NDATA/DDATA of one edge node through the host's rules in whole-run passes.

What most of a Sparkplug stream is: data messages of one edge node, in sequence, each metric
a Float or Double by an alias of a birth in force, one timestamp per message. For such a run
the rules of collector/sparkplug/host.py come to a few checks over columns
(telemetry.sparkplug.columns): the sequence numbers are the next ones (one list comparison),
every alias tuple resolves to sensors (one dict lookup per message, cached per birth), every
timestamp is in range (min and max); then the lines are written like the JSON fast path
writes them (orjson and one translate for the whole run, ``repr`` when a value would print
otherwise). Anything else, and any check that fails, returns ``None`` before anything
changed, and the caller takes the run message by message through ``SparkplugHost.handle``,
which words each gap, unknown alias or bad timestamp exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import cast

from collector.sparkplug.state import NS_PER_MS, SEQ_MODULUS, Aliases, Node, Row
from telemetry.codecs.fast_json import plain_fields
from telemetry.reading import NS_PER_S, ValidationLimits
from telemetry.sparkplug.columns import Columns, decode_columns
from telemetry.sparkplug.topics import SparkplugTopic

MAX_RUN = 2 * SEQ_MODULUS  # longer runs are split by the caller (a burst is at most 256)
# The sequence numbers a run must carry, as one slice: _CYCLE[next : next + len(run)].
_CYCLE = list(range(SEQ_MODULUS)) * 3
_LINE = "{}{} {}".format
_ROWS_MAX = 10_000  # alias tuples per birth; bounded for a node that shuffles its metrics


def data_run(
    node: Node,
    topics: Sequence[SparkplugTopic],
    series: Sequence[str],
    payloads: Sequence[bytes],
    received_ns: int,
    *,
    limits: ValidationLimits,
) -> list[str] | None:
    """One line of line protocol per message of the run, or None (take it message by
    message). ``series`` holds each message's validated ``telemetry,asset=..,site=.. ``
    prefix. On success the node's sequence number is the run's last."""
    columns = _in_sequence(node, payloads)
    known = None if columns is None else _births(node, topics)
    if columns is None or known is None:
        return None  # a device without its DBIRTH: handle() dead-letters it
    size = columns.counts[0]
    if columns.counts.count(size) == len(payloads):
        resolved = _uniform(known, columns, size, limits)
    else:
        resolved = _each(known, columns, limits)
    times_ns = None if resolved is None else _times(resolved[1], columns, received_ns, limits)
    if resolved is None or times_ns is None:
        return None
    rows = resolved[0]
    e_count = sum(map(attrgetter("e_count"), rows))
    l_count = sum(map(attrgetter("l_count"), rows))
    sensors = list(map(dict, map(zip, map(attrgetter("names"), rows), _values(columns))))
    fields = plain_fields(sensors, e_count, l_count)
    if fields is None:  # a value orjson prints otherwise than repr: repr it is
        fields = [",".join(f"{name}={value!r}" for name, value in s.items()) for s in sensors]
    node.seq = columns.seqs[-1]
    return list(map(_LINE, series, fields, times_ns))


def _in_sequence(node: Node, payloads: Sequence[bytes]) -> Columns | None:
    """The run's columns when the node is online and they carry the next sequence numbers
    (a gap, or a payload without seq: handle() asks for the rebirth)."""
    count = len(payloads)
    if not node.online or not 0 < count <= MAX_RUN:
        return None
    columns = decode_columns(payloads)
    first = (node.seq + 1) % SEQ_MODULUS
    if columns is None or columns.seqs != _CYCLE[first : first + count]:
        return None
    return columns


def _times(
    stamps: list[int] | None, columns: Columns, received_ns: int, limits: ValidationLimits
) -> list[int] | None:
    """Each message's time: its metrics', else its payload's, else the receipt time; None
    when one is out of range (handle() words the rejection)."""
    if stamps is None:
        stamps = columns.timestamps
    count = len(columns.counts)
    times_ns = [received_ns] * count if stamps is None else [t * NS_PER_MS for t in stamps]
    now = time.time_ns()
    if min(times_ns) < now - int(limits.max_age_s * NS_PER_S):
        return None
    if max(times_ns) > now + int(limits.max_future_s * NS_PER_S):
        return None
    return times_ns


def _births(node: Node, topics: Sequence[SparkplugTopic]) -> list[Aliases] | None:
    """The birth in force for each message's device (the node's own for NDATA)."""
    devices = list(map(attrgetter("device"), topics))
    if None not in devices:
        known = list(map(node.devices.get, devices))
        return None if None in known else cast("list[Aliases]", known)
    if devices.count(None) == len(devices):
        return [node.node_metrics] * len(devices)
    found = [node.node_metrics if d is None else node.devices.get(d) for d in devices]
    return None if None in found else cast("list[Aliases]", found)


_Resolved = tuple[list[Row], list[int] | None]


def _uniform(
    known: list[Aliases], columns: Columns, size: int, limits: ValidationLimits
) -> _Resolved | None:
    """Rows and timestamps when every message has ``size`` metrics: column slices in C."""
    aliases, times = columns.aliases, columns.times
    keys = list(zip(*(aliases[j :: size + 1] for j in range(size)), strict=True))
    rows = list(map(dict.get, map(attrgetter("rows"), known), keys))
    if None in rows:
        for i, row in enumerate(rows):
            if row is None:
                rows[i] = _learn(known[i], keys[i], limits)
        if None in rows:
            return None  # an alias that is not a stored Float or Double
    if times is None:
        return cast("list[Row]", rows), None
    stamps = times[0::size]
    if any(times[j::size] != stamps for j in range(1, size)):
        return None  # several timestamps in one message: several readings
    return cast("list[Row]", rows), stamps


def _each(known: list[Aliases], columns: Columns, limits: ValidationLimits) -> _Resolved | None:
    """Rows and timestamps message by message (messages with differing numbers of metrics)."""
    aliases, times = columns.aliases, columns.times
    rows: list[Row] = []
    stamps: list[int] = []
    start = 0  # the message's first metric; its aliases start len(rows) further (sentinels)
    for births, size in zip(known, columns.counts, strict=True):
        end = start + size
        key = tuple(aliases[start + len(rows) : end + len(rows)])
        row = births.rows.get(key) or _learn(births, key, limits)
        if row is None:
            return None
        if times is not None:
            if times[start:end].count(times[start]) != size:
                return None
            stamps.append(times[start])
        rows.append(row)
        start = end
    return rows, (stamps if times is not None else None)


def _values(columns: Columns) -> Iterator[tuple[float, ...]] | list[list[float]]:
    """Each message's values, in its metrics' order."""
    values, counts = columns.values, columns.counts
    size = counts[0]
    if counts.count(size) == len(counts):
        return zip(*(values[j::size] for j in range(size)), strict=True)
    out, start = [], 0
    for n in counts:
        out.append(values[start : start + n])
        start += n
    return out


def _learn(known: Aliases, key: tuple[int, ...], limits: ValidationLimits) -> Row | None:
    """The sensors of an alias tuple, when each alias is a stored Float or Double metric."""
    entries = list(map(known.fast.get, key))
    if None in entries:
        return None
    names = tuple(entry[0] for entry in entries if entry is not None)
    distinct = dict.fromkeys(names)
    if len(distinct) > limits.max_sensors:
        return None  # handle() splits it into several readings
    if len(known.rows) >= _ROWS_MAX:
        known.rows.clear()
    letters = "".join(distinct)
    row = known.rows[key] = Row(names, letters.count("e"), letters.count("l"))
    return row
