"""Who this collector replica is (its name, MQTT client id, spool file) and the spool's lock.

A replica's identity must survive a restart and a recreate: the broker keeps its persistent
session (and the share of a shared-subscription group queued in it) under the client id, and
the spool file holds what was acknowledged but not yet written. So both are derived from one
stable replica name: ``replica`` when set (``EQUIPMON_COLLECTOR__REPLICA``), else the host
name, which docker-compose sets per service (``hostname: collector-2``) and keeps across
recreates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from pathlib import Path

from collector.errors import SpoolError

# What a replica name may hold: it becomes part of an MQTT client id and of a file name.
REPLICA_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

CLIENT_ID_PREFIX = "equipmon-collector"


def host_replica_name(hostname: str | None = None) -> str:
    """The replica name the host name gives (first label, made safe for ids and file names)."""
    name = (hostname if hostname is not None else socket.gethostname()).split(".")[0]
    name = _UNSAFE.sub("-", name).strip("-.")[:64]
    return name or "collector"


def spool_file(spool_path: str, data_dir: str, replica: str) -> tuple[Path, str]:
    """The spool file and the setting that chose it.

    ``spool.path`` naming a folder (one that exists, or any path ending in ``/``) puts the
    file ``<replica>.sqlite`` inside it, so replicas sharing a volume keep apart; any other
    value is the file itself, as before. Empty keeps the one-machine default under
    ``data_dir``.
    """
    if not spool_path:
        return Path(data_dir) / "collector" / "spool.sqlite", "data_dir"
    path = Path(spool_path)
    if spool_path.endswith(("/", os.sep)) or path.is_dir():
        return path / f"{replica}.sqlite", "spool.path"
    return path, "spool.path"


class SpoolLock:
    """An exclusive ``flock`` on ``<spool>.lock`` for as long as one collector uses the spool.

    Two writers on one spool would each send and delete the other's rows and race their
    acknowledgements; the second one refuses at start instead. The lock is the kernel's, so a
    collector killed with SIGKILL leaves none behind. The file names the holder's pid.
    """

    def __init__(self, spool: Path) -> None:
        self.path = Path(f"{spool}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SpoolError naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SpoolError(
                f"another collector (pid {holder}) already uses this spool; give each replica "
                "its own (replica: EQUIPMON_COLLECTOR__REPLICA, or spool.path)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the file does)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
