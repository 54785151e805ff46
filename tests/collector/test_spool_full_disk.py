"""The spool on a file system that really fills: deletes still work, the limit fits the disk."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.capacity import Reserve, SpoolCapacity, reserve_size
from collector.errors import SpoolError, SpoolFullError
from collector.spool import DeadLetter, Spool, SpoolEntry
from tests.collector.helpers import fill_disk

LINE = b"telemetry,site=a,asset=b v=1 1795392000000000000"
MiB = 1024 * 1024


def _group(messages: int = 50, lines: int = 10) -> list[SpoolEntry]:
    body = b"\n".join([LINE] * lines)
    return [SpoolEntry("t", body, lines, 0) for _ in range(messages)]


def _fill(spool: Spool) -> int:
    """Append groups until the disk is full; the number of groups that fit."""
    groups = 0
    while True:
        try:
            spool.append(_group())
        except SpoolFullError:
            return groups
        groups += 1


def _drain(spool: Spool) -> None:
    while spool.rows:
        spool.delete(spool.read_batch(5000, 4 * MiB), written=1)


def test_a_full_disk_wedges_deletes_without_the_reserve_and_not_with_it(
    small_disk: Callable[[str], Path],
) -> None:
    # Without a reserve: the failure the issue found (WAL frames the checkpoint cannot place).
    bare = small_disk("4m")
    spool = Spool(bare / "spool.sqlite")
    assert _fill(spool) > 0
    with pytest.raises(SpoolError, match="no reserve left"):
        _drain(spool)
    spool.close()

    disk = small_disk("4m")
    reserve = Reserve(disk / "spool.sqlite.reserve", reserve_size(8 * MiB, 4 * MiB))
    assert reserve.restore()
    assert reserve.size == 256 * 1024
    spool = Spool(disk / "spool.sqlite", reserve=reserve)
    _fill(spool)
    assert os.statvfs(disk).f_bavail == 0  # really full
    _drain(spool)
    assert spool.rows == 0
    assert not reserve.held  # given back, and the drain went on
    assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize >= reserve.size
    spool.append(_group(1))  # and the spool takes data again
    spool.close()


def test_the_limit_is_lowered_to_the_disk_and_holding_back_has_a_low_mark(
    small_disk: Callable[[str], Path],
) -> None:
    disk = small_disk("4m")
    reserve = Reserve(disk / "spool.sqlite.reserve", reserve_size(8 * MiB, 4 * MiB))
    reserve.restore()
    spool = Spool(disk / "spool.sqlite", reserve=reserve)
    capacity = SpoolCapacity(
        spool.disk_usage, max_bytes=256 * MiB, resume_fraction=0.5, reserve=reserve, interval_s=0
    )
    # 4 MiB less the reserve file and as much free space kept as margin.
    assert 3 * MiB < capacity.limit <= 4 * MiB - 2 * reserve.size
    while not capacity.should_hold():
        spool.append(_group())
    assert capacity.usage.spool_bytes >= capacity.limit
    assert capacity.usage.free_bytes >= reserve.size  # the margin was never touched
    while capacity.should_hold():
        spool.delete(spool.read_batch(500, 4 * MiB), written=1)
    assert capacity.usage.spool_bytes < 0.5 * capacity.limit  # resumed below the low mark only
    spool.close()


def test_a_disk_filled_by_another_process_holds_back_until_it_has_room_again(
    small_disk: Callable[[str], Path],
) -> None:
    disk = small_disk("4m")
    reserve = Reserve(disk / "spool.sqlite.reserve", reserve_size(8 * MiB, 4 * MiB))
    reserve.restore()
    spool = Spool(disk / "spool.sqlite", reserve=reserve)
    capacity = SpoolCapacity(
        spool.disk_usage, max_bytes=256 * MiB, resume_fraction=0.9, reserve=reserve, interval_s=0
    )
    for _ in range(5):
        spool.append(_group())
    ballast = fill_disk(disk)
    with pytest.raises(SpoolFullError):
        spool.append(_group(500))
    capacity.disk_full()
    assert capacity.should_hold()
    _drain(spool)  # on a disk with no byte free
    assert capacity.should_hold()  # acknowledging into the reserve would lose the next drain
    assert not reserve.held
    fresh = SpoolCapacity(
        spool.disk_usage, max_bytes=256 * MiB, resume_fraction=0.9, reserve=reserve, interval_s=0
    )
    assert fresh.should_hold()  # no reserve and no room for it: held back without an error
    ballast.unlink()
    assert not capacity.should_hold()
    assert reserve.held  # taken back once there was room
    spool.close()


def test_dead_letters_never_take_more_than_their_byte_budget(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", dead_letter_max_bytes=100_000)
    for i in range(200):
        letter = DeadLetter(i, "undecodable", "bad", "t", b"x" * 10_000, 10_000)
        spool.append(_group(1), [letter])
    letters = spool.dead_letters(1000)
    assert sum(len(d.payload) for d in letters) <= 100_000
    assert letters[0].received_ns == 199  # the newest stay
    assert spool.totals()["dead_letters:undecodable"] == 200  # and every one is counted
    assert spool.readings == 200 * 10


def test_a_spool_that_cannot_be_written_at_start_is_one_line_naming_the_setting(
    small_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    disk = small_disk("1m")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    config = tmp_path / "collector.yaml"
    config.write_text(f"spool:\n  path: {disk}/spool.sqlite\nhttp:\n  enabled: false\n")
    done = subprocess.run(
        [sys.executable, "-m", "collector", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "spool.path" in lines[0]
    assert "cannot be written" in lines[0]
    assert "Traceback" not in done.stderr
