"""Runs of data messages (collector/sparkplug/runs.py) never disagree with the host's rules
taken message by message: either a run declines (``None``, nothing changed) or it gives the
very lines ``SparkplugHost.handle`` and ``LineFormatter`` give, with the same sequence state.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.settings import MqttSettings
from collector.sources.feed import Feed
from collector.sources.paho_fast import Publish
from collector.sources.sparkplug import SparkplugSource
from collector.sparkplug.host import SparkplugHost
from collector.sparkplug.settings import SparkplugSettings
from collector.spool import DeadLetter, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.sparkplug import decode_payload, parse_topic
from telemetry.sparkplug import sparkplug_b_pb2 as pb

NOW_MS = time.time_ns() // 1_000_000
RECEIVED_NS = NOW_MS * 1_000_000
Metric = pb.Payload.Metric
NODE = "spBv1.0/plant-a/{}/gw-1"
DEVICES = ["pump-01", "pump-02"]
# Aliases of the births: 1-3 Double, 4 Float, 5 Int32, 6 a control metric; 9 is unknown.
BIRTH = [
    ("Flow", 1, pb.Double),
    ("Motor/Bearing Temp", 2, pb.Double),
    ("Pressure", 3, pb.Double),
    ("Level", 4, pb.Float),
    ("Starts", 5, pb.Int32),
    ("Device Control/Reboot", 6, pb.Double),
]


def _birth(seq: int) -> pb.Payload:
    metrics = [
        Metric(name=name, alias=alias, datatype=kind, is_null=True) for name, alias, kind in BIRTH
    ]
    return pb.Payload(timestamp=NOW_MS, seq=seq, metrics=metrics)


def _host() -> tuple[SparkplugHost, int]:
    """A host with the node and both devices born; the next sequence number."""
    host = SparkplugHost()
    nbirth = pb.Payload(timestamp=NOW_MS, seq=0)
    nbirth.metrics.append(Metric(name="bdSeq", datatype=pb.Int64, long_value=0))
    nbirth.metrics.extend(_birth(0).metrics)
    host.handle(parse_topic(NODE.format("NBIRTH")), nbirth, RECEIVED_NS, 0.0)
    for seq, device in enumerate(DEVICES, start=1):
        topic = parse_topic(f"{NODE.format('DBIRTH')}/{device}")
        host.handle(topic, _birth(seq), RECEIVED_NS, 0.0)
    return host, len(DEVICES) + 1


@dataclass
class Sent:
    topic: str
    payload: bytes


def _one_by_one(host: SparkplugHost, sent: list[Sent]) -> tuple[list[str], bool]:
    """The lines of the per-message path, and whether it was clean (nothing refused)."""
    formatter = LineFormatter()
    lines: list[str] = []
    clean = True
    for message in sent:
        result = host.handle(
            parse_topic(message.topic), decode_payload(message.payload), RECEIVED_NS, 0.0
        )
        lines += map(formatter.line, result.readings)
        clean &= not (result.unresolved or result.skipped or result.sequence_gap)
        clean &= not result.rebirth and len(result.readings) == 1
    return lines, clean


def _run(host: SparkplugHost, sent: list[Sent]) -> list[str] | None:
    formatter = LineFormatter()
    topics = [parse_topic(m.topic) for m in sent]
    series = []
    for topic in topics:
        names = host.site_asset(topic)
        assert names is not None
        series.append(formatter.series_key(*names))
    return host.handle_run(topics, series, [m.payload for m in sent], RECEIVED_NS)


def _node_seq(host: SparkplugHost) -> int:
    return host._nodes["plant-a", "gw-1"].seq


def test_a_plain_run_is_taken_whole_and_says_what_each_message_says() -> None:
    host, seq = _host()
    twin, _ = _host()
    sent = [
        Sent(
            f"{NODE.format('DDATA')}/{DEVICES[i % 2]}",
            pb.Payload(
                timestamp=NOW_MS,
                seq=(seq + i) % 256,
                metrics=[
                    Metric(alias=1, timestamp=NOW_MS - i, double_value=i + 0.5),
                    Metric(alias=2, timestamp=NOW_MS - i, double_value=1e-7 * i),
                    Metric(alias=4, timestamp=NOW_MS - i, double_value=2.0),
                ],
            ).SerializeToString(),
        )
        for i in range(300)  # past 255: the sequence number wraps inside the run
    ]
    lines = _run(host, sent)
    expected, clean = _one_by_one(twin, sent)
    assert clean
    assert lines == expected
    assert _node_seq(host) == _node_seq(twin) == (seq + 299) % 256


def test_ndata_runs_use_the_node_birth() -> None:
    host, seq = _host()
    twin, _ = _host()
    sent = [
        Sent(
            NODE.format("NDATA"),
            pb.Payload(
                timestamp=NOW_MS, seq=seq, metrics=[Metric(alias=3, float_value=4.25)]
            ).SerializeToString(),
        )
    ]
    lines = _run(host, sent)
    assert lines is not None
    assert lines == _one_by_one(twin, sent)[0]


_any_metric = st.tuples(
    st.sampled_from([1, 2, 3, 4, 5, 6, 9, 0]),  # alias (0: none)
    st.sampled_from(["double", "float", "int", "null", "nan", "inf", "none"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["same", "none", "other", "zero", "old"]),
)
# What streams mostly are (so that runs are taken often enough to compare what they say).
_plain_metric = st.tuples(
    st.sampled_from([1, 2, 3, 4]),  # repeated aliases too: the last value counts
    st.just("double"),  # (Float fields too, in a run of their own)
    st.floats(allow_nan=False, allow_infinity=False),
    st.just("same"),
)
_any_message = st.tuples(
    st.sampled_from([*DEVICES, "pump-09", None]),  # None: NDATA; pump-09 has no DBIRTH
    st.sampled_from(["next", "gap", "none"]),
    st.booleans(),  # a payload timestamp
    st.lists(st.one_of(_plain_metric, _any_metric), min_size=0, max_size=4),
)
_plain_message = st.tuples(
    st.sampled_from([*DEVICES, None]),
    st.just("next"),
    st.booleans(),
    st.lists(_plain_metric, min_size=1, max_size=4),
)
_message = st.one_of(_plain_message, _plain_message, _plain_message, _any_message)


def _sent(
    message: tuple[str | None, str, bool, list[tuple[int, str, float, str]]], seq: int
) -> Sent:
    device, order, stamped, metrics = message
    payload = pb.Payload()
    if stamped:
        payload.timestamp = NOW_MS
    if order != "none":
        payload.seq = seq % 256 if order == "next" else (seq + 7) % 256
    for alias, kind, value, when in metrics:
        metric = payload.metrics.add()
        if alias:
            metric.alias = alias
        if kind == "double":
            metric.double_value = value
        elif kind == "float":
            metric.float_value = value if abs(value) < 3e38 else 1.0
        elif kind == "int":
            metric.int_value = int(abs(value)) % 2**32
        elif kind == "null":
            metric.is_null = True
        elif kind in ("nan", "inf"):
            metric.double_value = math.nan if kind == "nan" else -math.inf
        stamps = {"same": NOW_MS, "other": NOW_MS - 5, "zero": 0, "old": 1}
        if when in stamps:
            metric.timestamp = stamps[when]
    topic = NODE.format("NDATA") if device is None else f"{NODE.format('DDATA')}/{device}"
    return Sent(topic, payload.SerializeToString())


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, min_size=1, max_size=6))
def test_a_run_declines_or_agrees_with_the_rules(
    messages: list[tuple[str | None, str, bool, list[tuple[int, str, float, str]]]],
) -> None:
    host, seq = _host()
    twin, _ = _host()
    sent = [_sent(message, seq + i) for i, message in enumerate(messages)]
    before = _node_seq(host)
    lines = _run(host, sent)
    expected, clean = _one_by_one(twin, sent)
    if lines is None:
        assert _node_seq(host) == before  # nothing changed: one by one decides
        return
    assert clean  # a run only takes what the rules take without a word
    assert lines == expected
    assert _node_seq(host) == _node_seq(twin)


class _Feed:
    """The feed's side the source uses: what it submits."""

    def __init__(self) -> None:
        self.messages = 0
        self.items: list[object] = []

    def submit(self, items: list[object], tokens: list[object]) -> None:
        self.items.extend(items)


def _source(*, fast_path: bool) -> tuple[SparkplugSource, _Feed]:
    feed = _Feed()
    source = SparkplugSource(
        SparkplugSettings(enabled=True, host_id=""),
        MqttSettings(fast_path=fast_path),
        lambda name, kind, ack: cast(Feed, feed),
        clock_ns=lambda: RECEIVED_NS,
    )
    return source, feed


def _count_runs(source: SparkplugSource) -> list[int]:
    """The readings of each run the host takes (0: declined), as they happen."""
    taken: list[int] = []
    handle_run = source._host.handle_run

    def counted(*args: Any) -> list[str] | None:
        lines = handle_run(*args)
        taken.append(len(lines or ()))
        return lines

    setattr(source._host, "handle_run", counted)  # noqa: B010 (an instance's method)
    return taken


def test_the_source_says_the_same_with_runs_and_without() -> None:
    """Bursts interleaving two edge nodes' data of two devices each, with a gap, an unknown
    alias and an undecodable payload in one node's stream: the same lines, dead letters and
    counts with runs (the default) and one by one."""
    nodes = ["gw-1", "gw-2"]
    births: list[Publish] = []
    for node in nodes:
        nbirth = pb.Payload(timestamp=NOW_MS, seq=0, metrics=_birth(0).metrics)
        nbirth.metrics.add(name="bdSeq", datatype=pb.Int64, long_value=0)
        births.append(
            (f"spBv1.0/plant-a/NBIRTH/{node}".encode(), nbirth.SerializeToString(), 0, 0, 0)
        )
        for seq, device in enumerate(DEVICES, start=1):
            topic = f"spBv1.0/plant-a/DBIRTH/{node}/{device}".encode()
            births.append((topic, _birth(seq).SerializeToString(), 0, 0, 0))
    data: list[Publish] = []
    seqs = dict.fromkeys(nodes, len(DEVICES))  # each node's last birth's
    for i in range(600):
        node = nodes[0] if i % 3 else nodes[1]
        seqs[node] += 7 if i == 301 else 1  # a gap: a rebirth asked, known aliases resolve
        metrics = [Metric(alias=1, timestamp=NOW_MS - i, double_value=float(i))]
        metrics.append(Metric(alias=9 if i == 401 else 2, timestamp=NOW_MS - i, double_value=1.0))
        payload = pb.Payload(timestamp=NOW_MS, seq=seqs[node] % 256, metrics=metrics)
        topic = f"spBv1.0/plant-a/DDATA/{node}/{DEVICES[i % 2]}".encode()
        raw = b"\x0a\xff" if i == 500 else payload.SerializeToString()
        data.append((topic, raw, 0, 0, 0))
    results = []
    for fast_path in (True, False):
        source, feed = _source(fast_path=fast_path)
        taken = _count_runs(source)
        source._on_batch(births)
        for start in range(0, len(data), 256):
            source._on_batch(data[start : start + 256])
        lines = [
            line for i in feed.items if isinstance(i, SpoolEntry) for line in i.body.splitlines()
        ]
        dead = [(d.reason, d.payload) for d in feed.items if isinstance(d, DeadLetter)]
        status = source.status
        results.append((sorted(lines), sorted(dead), status.readings, status.sequence_gaps))
        assert bool(source._data_topics) is fast_path  # runs only on the fast path
        # Each burst: one run per node (the first message of each topic alone, the first
        # time); gw-1's in the second burst (the gap, alias and payload) goes one by one.
        assert taken == ([168, 84, 0, 85, 59, 29] if fast_path else [])
    assert results[0] == results[1]
    assert results[0][2] == 599  # all but the undecodable (the unknown alias's keeps alias 1)
    assert results[0][3] == 2  # the gap, and the undecodable message's seq
    assert [reason for reason, _ in results[0][1]] == ["undecodable", "unknown_alias"]
