"""ASCII frame parsing: valid frames decode; each kind of corruption has its own reason."""

from __future__ import annotations

import pytest

from collector.serial.frames import FrameError, checksum, format_frame, parse_frame
from collector.serial.sequence import SequenceTracker


def test_valid_frame_with_device_clock() -> None:
    body = b"conv-01,17,motor_speed=1467.0,belt_speed=2.467,ts=1795420800000"
    frame = parse_frame(b"$" + body + f"*{checksum(body):02X}\r\n".encode())
    assert frame.asset == "conv-01"
    assert frame.seq == 17
    assert frame.values == {"motor_speed": 1467.0, "belt_speed": 2.467}
    assert frame.device_time_ms == 1795420800000


def test_format_and_parse_round_trip() -> None:
    raw = format_frame("pump-01", 4294967295, {"flow": -3.5, "temp": 1e-3})
    frame = parse_frame(raw)
    assert (frame.asset, frame.seq, frame.values, frame.device_time_ms) == (
        "pump-01", 4294967295, {"flow": -3.5, "temp": 0.001}, None)  # fmt: skip


GOOD = format_frame("pump-01", 5, {"flow": 12.5, "temp": 40.0})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (GOOD[:-6] + b"\r\n", "truncated"),  # cut before the checksum
        (b"pump-01,5,flow=1*00\r\n", "truncated"),  # no '$'
        (GOOD.replace(b"12.5", b"12.6"), "bad_checksum"),
        (b"$" + b"\x00\xff\x13garbage" + b"*00\r\n", "binary_noise"),
        (b"$" + b"a" * 600 + b"*00\r\n", "overlong"),
        (
            format_frame("pump-01", 5, {"flow": 1.0})
            .replace(b"flow=1.0", b"flow=abc")
            .replace(b"*", b"*", 1),
            "bad_checksum",
        ),  # changed bytes change the checksum first
        (format_frame("pump 01", 5, {"flow": 1.0}), "bad_asset"),
        (format_frame("pump-01", 5, {"flow": 1.0}).replace(b",5,", b",-5,"), "bad_checksum"),
    ],
)
def test_corruptions_are_rejected_with_their_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw)
    assert caught.value.reason == reason


def _framed(body: str) -> bytes:
    return b"$" + body.encode() + f"*{checksum(body.encode()):02X}\r\n".encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("pump-01,5,flow=abc", "bad_field"),
        ("pump-01,5,flow=nan", "bad_field"),
        ("pump-01,5,flow", "bad_field"),
        ("pump-01,5,9x=1", "bad_field"),
        ("pump-01,5,ts=12.5,flow=1", "bad_field"),
        ("pump-01,5", "bad_field"),
        ("pump-01,x5,flow=1", "bad_sequence"),
        ("pump-01,4294967296,flow=1", "bad_sequence"),
        ("pump/01,5,flow=1", "bad_asset"),
    ],
)
def test_well_checksummed_but_invalid_content(body: str, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(_framed(body))
    assert caught.value.reason == reason


def test_sequence_tracker_finds_duplicates_gaps_wraps_and_resets() -> None:
    tracker = SequenceTracker()
    assert tracker.observe("a", 10).missing == 0
    assert tracker.observe("a", 10).duplicate
    assert tracker.observe("a", 13).missing == 2
    assert tracker.observe("b", 0).missing == 0  # per asset
    tracker.observe("c", 4294967294)
    assert tracker.observe("c", 1).missing == 2  # wrapped: 4294967295 and 0 are missing
    assert tracker.observe("a", 2).reset  # the device restarted its counter
    assert tracker.observe("a", 3).missing == 0
