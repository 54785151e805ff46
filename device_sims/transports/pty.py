"""Pseudo-terminals standing in for serial ports, and a relay joining two of them.

The simulator writes to the master side; the collector opens the slave path (``/dev/pts/N``)
with pyserial exactly as it would open ``/dev/ttyUSB0``. Both ends are put in raw mode so the
line discipline neither echoes nor rewrites ``\\r\\n``. We keep the slave open ourselves so the
pty survives a collector closing and reopening the port (like a cable being replugged).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty


class Pty:
    """One pseudo-terminal pair; ``path`` is what a serial reader opens."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class PtyRelay:
    """Copies bytes both ways between the masters of two ptys (a null-modem cable).

    pymodbus' serial server opens a port by path, so it gets the slave of one pty and the
    collector gets the slave of another; this thread joins the two masters.
    """

    def __init__(self) -> None:
        self.device_side = Pty()
        self.client_side = Pty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-relay", daemon=True)

    def start(self) -> None:
        """Start copying."""
        self._thread.start()

    def close(self) -> None:
        """Stop copying and close both ptys."""
        self._stop.set()
        self._thread.join(2.0)
        self.device_side.close()
        self.client_side.close()

    def _run(self) -> None:
        a, b = self.device_side.master, self.client_side.master
        peer = {a: b, b: a}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([a, b], [], [], 0.2)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    continue  # EIO while nobody holds the other end open: nothing to read
                self._write_all(peer[fd], data)

    def _write_all(self, fd: int, data: bytes) -> None:
        while data and not self._stop.is_set():
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                select.select([], [fd], [], 0.2)
                continue
            except OSError:
                return
            data = data[written:]
