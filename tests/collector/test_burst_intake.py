"""A read burst gives the same spool entries and dead letters as its messages one by one.

``Intake.process_many`` checks and formats a burst of single-reading JSON messages of one plain
shape in C-level passes over the whole burst; everything else goes message by message. Either
way, each message's outcome must be exactly what ``Intake.process`` gives it alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.intake import Intake
from collector.spool import DeadLetter, SpoolEntry

NOW = 1_795_392_000_000_000_000
PREFIX = "p"


def intake() -> Intake:
    return Intake(prefix=PREFIX, clock_ns=lambda: NOW)


def one_by_one(topics: list[str], payloads: list[bytes]) -> list[SpoolEntry | DeadLetter]:
    single = intake()
    return [single.process(t, p) for t, p in zip(topics, payloads, strict=True)]


def agree(topics: list[str], payloads: list[bytes]) -> list[SpoolEntry | DeadLetter]:
    """Assert the burst path and the one-by-one path agree; return the burst's outcome."""
    burst = intake().process_many(topics, payloads)
    assert burst == one_by_one(topics, payloads)
    return burst


_NAMES = st.sampled_from([("v",), ("flow", "e-1", "x.y_z"), ("level", "temp", "current")])
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def uniform_bursts(draw: st.DrawFn) -> tuple[list[str], list[bytes]]:
    names = draw(_NAMES)
    timed = draw(st.booleans())
    size = draw(st.integers(2, 12))
    topics, payloads = [], []
    for k in range(size):
        asset = draw(st.sampled_from(["pump-1", "fan_2", "chiller.3"]))
        record: dict[str, Any] = {"sensors": {n: draw(_FLOATS) for n in names}}
        if timed:
            record = {"time": NOW - k, **record}
        topics.append(f"{PREFIX}/site-a/{asset}/telemetry")
        payloads.append(json.dumps(record).encode())
    return topics, payloads


@settings(max_examples=400, deadline=None)
@given(uniform_bursts())
def test_uniform_bursts_agree_with_one_by_one(burst: tuple[list[str], list[bytes]]) -> None:
    """Random finite floats (tiny, huge, negative zero, subnormal) and names holding the
    letters the notation check counts (``e``, ``l``): the bytes never differ."""
    outcome = agree(*burst)
    assert all(type(item) is SpoolEntry for item in outcome)


def test_uniform_bursts_take_the_burst_path(monkeypatch: pytest.MonkeyPatch) -> None:
    topics = [f"{PREFIX}/s1/pump-{k % 3}/telemetry" for k in range(20)]
    payloads = [
        json.dumps({"time": NOW - k, "sensors": {"flow": k + 0.25, "temp": 20.5}}).encode()
        for k in range(20)
    ]
    expected = one_by_one(topics, payloads)

    def one(*_: Any) -> None:
        raise AssertionError("a message went one by one")

    burst_intake = intake()
    monkeypatch.setattr(burst_intake, "process", one)
    assert burst_intake.process_many(topics, payloads) == expected
    assert expected[0] == SpoolEntry(
        topics[0],
        b"telemetry,asset=pump-0,site=s1 flow=0.25,temp=20.5 " + str(NOW).encode(),
        1,
        NOW,
    )


GOOD = json.dumps({"time": NOW, "sensors": {"v": 1.5}}).encode()


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"{PREFIX}/s1/a1/telemetry", b'{"time": 1, "sensors": {"v": NaN}}'),  # non-finite
        (f"{PREFIX}/s1/a1/telemetry", b"[1"),  # invalid JSON
        (f"{PREFIX}/s1/a1/telemetry", b"\xff\xfe"),  # invalid UTF-8
        (f"{PREFIX}/s1/a1/telemetry", json.dumps({"sensors": {"v": 1}}).encode()),  # an int
        (f"{PREFIX}/s1/a1/telemetry", json.dumps({"sensors": {"w": 1.5}}).encode()),  # names
        (f"{PREFIX}/s1/a1/telemetry", json.dumps({"time": 5, "sensors": {"v": 1.5}}).encode()),
        (f"{PREFIX}/s1/a1/telemetry", json.dumps({"sensors": {"v": 1e-5}}).encode()),  # notation
        (
            f"{PREFIX}/s1/a1/telemetry",
            json.dumps({"sensors": {"v": 1.5}, "quality": "bad"}).encode(),
        ),
        (f"{PREFIX}/s1/a1/telemetry", json.dumps({"readings": [{"sensors": {"v": 2.5}}]}).encode()),
        (f"{PREFIX}/s1/a 1/telemetry", GOOD),  # an asset name that needs escaping
        (f"{PREFIX}/s1/a/1/telemetry", GOOD),  # not the topic layout
        (f"{PREFIX}/s1/a1/telemetry/lp", b"telemetry v=1.5 1"),  # line protocol
        (f"{PREFIX}/s1/a1/telemetry", b" " * 2_000_000),  # too large
    ],
)
def test_a_burst_with_one_odd_message_agrees_with_one_by_one(topic: str, payload: bytes) -> None:
    """The odd message sits among plain ones: every message still gets its own outcome."""
    plain = f"{PREFIX}/s1/a1/telemetry"
    outcome = agree([plain, topic, plain], [GOOD, payload, GOOD])
    assert type(outcome[0]) is SpoolEntry
    assert type(outcome[2]) is SpoolEntry


def test_a_single_message_burst_goes_one_by_one() -> None:
    agree([f"{PREFIX}/s1/a1/telemetry"], [GOOD])


@pytest.mark.parametrize("name", ["time", "a/b", " v", "x" * 300])
def test_a_burst_of_invalid_sensor_names_is_dead_lettered_quietly(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad input is no internal error: every message gets its own rejection, nothing logs a
    traceback."""
    payload = json.dumps({"time": NOW, "sensors": {name: 1.5}}).encode()
    outcome = agree([f"{PREFIX}/s1/a1/telemetry"] * 3, [payload] * 3)
    assert all(type(item) is DeadLetter for item in outcome)
    assert not [r for r in caplog.records if r.exc_info]


def test_a_bug_in_the_burst_path_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error is logged and the burst goes one by one."""

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("bug")

    burst_intake = intake()
    monkeypatch.setattr(burst_intake._fast, "convert_singles", broken)
    topics, payloads = [f"{PREFIX}/s1/a1/telemetry"] * 3, [GOOD] * 3
    assert burst_intake.process_many(topics, payloads) == one_by_one(topics, payloads)
    assert any("burst fast path failed" in r.getMessage() for r in caplog.records)


_LP_LINES = st.sampled_from([
    "telemetry v=1.5,w=2", "telemetry,asset=other v=2.5", 'telemetry v=1.5,quality="bad"',
    "telemetry v=1.5 {now}", "telemetry v=1.5 {now}\n", "telemetry v=1.5\ntelemetry v=2.5",
    "telemetry,site=s2 v=1.5", "telemetry v=1i", "telemetry v=t", "", "# comment",
    "telemetry v=1e-05", "telemetry,asset=a\\ b v=1.5", "telemetry v=1.5 5",
])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1/a1", "s1/b 2", "s1/c3"]), _LP_LINES), min_size=2,
                max_size=8))  # fmt: skip
def test_line_protocol_bursts_agree_with_one_by_one(messages: list[tuple[str, str]]) -> None:
    topics = [f"{PREFIX}/{place}/telemetry/lp" for place, _ in messages]
    agree(topics, [line.format(now=NOW).encode() for _, line in messages])


def test_one_line_bursts_take_the_burst_path(monkeypatch: pytest.MonkeyPatch) -> None:
    topics = [f"{PREFIX}/s1/pump-{k % 3}/telemetry/lp" for k in range(20)]
    payloads = [f"telemetry flow={k + 0.25},temp=20 {NOW - k}\n".encode() for k in range(20)]
    expected = one_by_one(topics, payloads)
    assert all(type(item) is SpoolEntry for item in expected)

    def one(*_: Any) -> None:
        raise AssertionError("a message went one by one")

    burst_intake = intake()
    burst_intake.process_many(topics, payloads)  # learns the topics
    monkeypatch.setattr(burst_intake, "process", one)
    assert burst_intake.process_many(topics, payloads) == expected
