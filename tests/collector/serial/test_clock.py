"""Receipt timestamps: monotonic, and slewed (never stepped) when the wall clock jumps."""

from __future__ import annotations

from collector.serial.clock import ReceiptClock


class FakeClocks:
    def __init__(self) -> None:
        self.wall = 1_795_000_000_000_000_000
        self.mono = 0

    def advance(self, ns: int) -> None:
        self.wall += ns
        self.mono += ns


def test_follows_the_wall_clock_when_it_runs_normally() -> None:
    clocks = FakeClocks()
    clock = ReceiptClock(lambda: clocks.wall, lambda: clocks.mono)
    clocks.advance(5_000_000_000)
    assert clock.now_ns() == clocks.wall


def test_a_wall_clock_step_back_is_slewed_not_followed() -> None:
    clocks = FakeClocks()
    clock = ReceiptClock(lambda: clocks.wall, lambda: clocks.mono)
    stamps = []
    for _ in range(100):
        clocks.advance(100_000_000)
        stamps.append(clock.now_ns())
    clocks.wall -= 10_000_000_000  # NTP steps the clock back by 10 s
    for _ in range(100):
        clocks.advance(100_000_000)
        stamps.append(clock.now_ns())
    assert stamps == sorted(set(stamps))  # strictly increasing: no reordering, no duplicates
    step = stamps[100] - stamps[99]
    assert 99_000_000 <= step <= 100_000_000  # slewed by at most 1 ms per second
    assert stamps[-1] - clocks.wall > 9_000_000_000  # the correction is gradual


def test_identical_instants_get_distinct_stamps() -> None:
    clocks = FakeClocks()
    clock = ReceiptClock(lambda: clocks.wall, lambda: clocks.mono)
    assert clock.now_ns() < clock.now_ns()
