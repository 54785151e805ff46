"""The spool's room on its disk: the effective limit, the fill level, holding back, the reserve.

The spool is bounded by what it really takes on disk (pages in use plus the WAL), not by the
line-protocol bytes it holds, and never by more than its file system can give it. Two kinds of
headroom keep draining possible on a full disk (docs/collector.md, "When the disk fills"):

- **margin**: free space the limit keeps on the file system (``limit = file + free - margin -
  reserve``), so that the spool itself never fills the disk: a checkpoint, a WAL reset and the
  deletes of a drain always find room;
- **reserve**: a file of the same size the spool owns next to it and deletes when a delete meets a
  full disk anyway (another process filled it, or the estimate was short), so that the drain goes
  on; it is recreated once the disk has room again.

Holding back has hysteresis: it starts at the limit (or at a disk-full error) and ends only when
the spool is below ``resume_fraction`` of the limit, so acknowledgements do not flap.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HOLDING_BACK = "spool full, holding back"
OK = "ok"

# A reserve (and margin) larger than 1/16 of a small file system would waste it; 64 KiB is
# the least that holds a delete's pages plus a WAL index and header.
_RESERVE_FRACTION = 16
_RESERVE_MIN = 64 * 1024


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """One measurement of the spool and its file system."""

    spool_bytes: int  # pages in use + WAL: what the spool takes (free pages are reusable)
    file_bytes: int  # the main file and the WAL as they are on disk (free pages included)
    free_bytes: int  # what the file system still gives us
    total_bytes: int  # the file system's size
    rows: int = 0  # spooled rows (an empty spool always takes one more group)


def measure_fs(path: Path) -> tuple[int, int]:
    """(free bytes for an unprivileged writer, total bytes) of the file system holding ``path``."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


def reserve_size(configured: int, total_bytes: int) -> int:
    """The reserve (and margin) on a file system of ``total_bytes``: the setting, at most 1/16."""
    return max(_RESERVE_MIN, min(configured, total_bytes // _RESERVE_FRACTION))


class Reserve:
    """A file of ``size`` bytes the spool gives back to its file system when the disk is full."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._lock = threading.Lock()
        self.held = False

    def restore(self) -> bool:
        """Allocate the reserve (really: blocks, not a sparse file); False when there is no room."""
        with self._lock:
            if self.held:
                return True
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                try:
                    _allocate(fd, self.size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    log.warning("cannot create the spool's reserve %s: %s", self.path, exc)
                return False
            self.held = True
            return True

    def release(self) -> bool:
        """Give the reserve back to the file system; True when there was one to give."""
        with self._lock:
            if not self.held:
                return False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False
        log.warning(
            "the spool's disk is full: released its %d-byte reserve so the drain can go on",
            self.size,
        )
        return True


def _allocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        # A file system without fallocate: write the blocks.
        os.ftruncate(fd, 0)
        chunk = b"\0" * 65536
        for _ in range(0, size, len(chunk)):
            os.write(fd, chunk)


class SpoolCapacity:
    """The effective limit and the holding-back state, measured at most every ``interval_s``."""

    def __init__(
        self,
        measure: Callable[[], DiskUsage],
        *,
        max_bytes: int,
        resume_fraction: float,
        reserve: Reserve,
        interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        on_limit: Callable[[int], None] = lambda limit: None,
    ) -> None:
        self._measure = measure
        self._on_limit = on_limit
        self._max_bytes = max_bytes
        self._resume = resume_fraction
        self.reserve = reserve
        self._interval = interval_s
        self._grown = 0  # bytes committed since the last measure (committer.grew)
        self._clock = clock
        self._lock = threading.Lock()
        self._checked = -1e9
        self._disk_full = False
        self._lowered: bool | None = None
        self.holding_back = False
        self.usage = measure()
        self.limit = self._limit(self.usage)
        on_limit(self.limit)
        self._log_limit()

    @property
    def margin(self) -> int:
        """Free space the limit leaves on the file system (the reserve's size)."""
        return self.reserve.size

    @property
    def fill(self) -> float:
        """What the spool takes as a fraction of its effective limit."""
        return self.usage.spool_bytes / self.limit if self.limit > 0 else 1.0

    def _limit(self, usage: DiskUsage) -> int:
        # What the disk can give the spool: its files, the free space, less the margin, and
        # less the reserve while it is released (the spool wants it back).
        room = usage.file_bytes + usage.free_bytes - self.margin
        if not self.reserve.held:
            room -= self.reserve.size
        return max(0, min(self._max_bytes, room))

    def _log_limit(self) -> None:
        lowered = self.limit < self._max_bytes
        if lowered == self._lowered:
            return
        self._lowered = lowered
        if lowered:
            log.warning(
                "spool.max_bytes (%d) is more than the spool's disk can hold: using %d "
                "(file system %d bytes, %d free, %d kept as headroom)",
                self._max_bytes,
                self.limit,
                self.usage.total_bytes,
                self.usage.free_bytes,
                2 * self.reserve.size,
            )
        elif self._checked > -1e9:
            log.info("the spool's disk has room for spool.max_bytes (%d) again", self._max_bytes)

    def disk_full(self) -> None:
        """An append met a full disk: hold back until the spool is below the low mark."""
        with self._lock:
            self._disk_full = True
            self._checked = -1e9
        self.should_hold()

    def grew(self, nbytes: int) -> None:
        """A group of about ``nbytes`` was committed since the last measure."""
        with self._lock:
            self._grown += nbytes

    def should_hold(self, *, force: bool = False) -> bool:
        """Whether new data must wait (measures again when the last check is old enough, or
        when what was committed since may have reached the limit: under a flood many groups
        commit within one interval, and the limit must not be overshot by more than one)."""
        now = self._clock()
        with self._lock:
            near = self.usage.spool_bytes + self._grown >= self.limit
            if not force and not near and now - self._checked < self._interval:
                return self.holding_back
            self._checked = now
            self._grown = 0
            try:
                self.usage = self._measure()
            except (OSError, RuntimeError) as exc:  # cannot measure: keep the last state
                log.warning("cannot measure the spool's disk: %s", exc)
                return self.holding_back
            self.limit = self._limit(self.usage)
            self._on_limit(self.limit)
            self._log_limit()
            used = self.usage.spool_bytes
            # An empty spool takes one more group whatever its size (a limit below the empty
            # file's pages and WAL must not stop everything); a full disk stops even that.
            over = used >= self.limit and self.usage.rows > 0
            # Without its reserve (given back to a full disk, or no room for it at start) the
            # spool takes nothing new until it can have the reserve back: see _room().
            unreserved = not self.reserve.held and not self._room()
            if not self.holding_back and (over or self._disk_full or unreserved):
                self.holding_back = True
                log.warning(
                    "%s: %d of %d bytes (%.0f %%), %d free on its disk; acknowledgements wait "
                    "for the writer to drain it",
                    HOLDING_BACK,
                    used,
                    self.limit,
                    100 * self.fill,
                    self.usage.free_bytes,
                )
            elif (
                self.holding_back
                and (used < self._resume * self.limit or self.usage.rows == 0)
                and self._room()
            ):
                self.holding_back = False
                self._disk_full = False
                log.info(
                    "spool below its low mark (%d of %d bytes): acknowledging", used, self.limit
                )
            restore = not self.reserve.held and not self.holding_back
        if restore and self.usage.free_bytes >= 2 * self.reserve.size and self.reserve.restore():
            log.info("the spool's reserve is back (%d bytes)", self.reserve.size)
        return self.holding_back

    def _room(self) -> bool:
        # Acknowledge again only with the reserve held (or room to take it back) and, after a
        # disk-full error, the margin free too: free pages inside the file may not be enough
        # for the WAL, and acknowledging without a reserve would leave the next full-disk
        # drain without one, the wedge this module exists to prevent.
        free = self.usage.free_bytes
        if not self.reserve.held:
            return free >= self.margin + self.reserve.size
        return not self._disk_full or free >= self.margin

    def status(self) -> str:
        """``ok`` or ``spool full, holding back``."""
        return HOLDING_BACK if self.holding_back else OK
