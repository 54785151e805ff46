"""Serial ASCII devices: checksummed frames on a pseudo-terminal or a ``socket://`` TCP port.

Several assets may share one line (an RS-485 multi-drop bus): every frame names its asset and
each asset numbers its own frames. A serial line has no flow control toward a reader that is
not there: when the pty buffer is full, frames are dropped and counted, as on a real wire.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
from urllib.parse import urlsplit

from device_sims.engine import Sample
from device_sims.formats import serial_frame
from device_sims.seeding import Noise
from device_sims.transports.pty import Pty

log = logging.getLogger(__name__)


class SerialAsciiLine:
    """One serial line carrying ASCII frames of one or more assets."""

    def __init__(
        self,
        line_id: str,
        *,
        listen: str | None = None,
        with_clock: bool = True,
        error_rate: float = 0.0,
        seed: int = 0,
        block: bool = False,
    ) -> None:
        self.line_id = line_id
        self.with_clock = with_clock
        self.error_rate = error_rate
        self.block = block
        self._noise = Noise(seed)
        self._seq: dict[str, int] = {}
        self._pty: Pty | None = None
        self._server: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listen = listen
        self.counters = {"frames": 0, "dropped": 0, "corrupted": 0}

    @property
    def url(self) -> str:
        """What a reader passes to ``serial.serial_for_url``: a pty path or socket:// URL."""
        if self._pty is not None:
            return self._pty.path
        if self._server is not None:
            host, port = self._server.getsockname()[:2]
            return f"socket://{host}:{port}"
        raise RuntimeError("line not started")

    def start(self) -> None:
        """Create the pty, or listen on the TCP port."""
        if self._listen is None:
            self._pty = Pty()
            log.info("serial line %s on %s", self.line_id, self._pty.path)
            return
        parts = urlsplit(self._listen)
        if parts.scheme != "socket":
            raise ValueError(f"serial line {self.line_id}: listen must be socket://host:port")
        server = socket.create_server((parts.hostname or "127.0.0.1", parts.port or 0))
        server.settimeout(0.2)
        self._server = server
        threading.Thread(target=self._accept, name=f"serial-{self.line_id}", daemon=True).start()
        log.info("serial line %s on %s", self.line_id, self.url)

    def send(self, sample: Sample) -> None:
        """Write the asset's next frame to the line."""
        seq = self._seq.get(sample.asset, 0)
        self._seq[sample.asset] = (seq + 1) & 0xFFFFFFFF
        frame = serial_frame(
            sample.asset, seq, sample.sensors, sample.time_ns if self.with_clock else None
        )
        if self.error_rate and self._noise.chance(self.error_rate):
            # Line noise: one flipped bit somewhere in the body, so the checksum no longer fits.
            pos = 1 + int(self._noise.uniform() * (len(frame) - 6))
            frame = frame[:pos] + bytes([frame[pos] ^ 0x04]) + frame[pos + 1 :]
            self.counters["corrupted"] += 1
        self.counters["frames"] += 1
        if self._pty is not None:
            self._write_pty(frame)
        else:
            self._write_clients(frame)

    def tick(self, now_ns: int) -> None:
        """Frames are sent as they are made; nothing to do."""

    def flush(self, timeout_s: float) -> bool:
        """Frames are written synchronously; nothing waits."""
        return True

    def close(self) -> None:
        """Close the pty or the server and its clients."""
        self._stop.set()
        if self._pty is not None:
            self._pty.close()
        if self._server is not None:
            self._server.close()
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def stats(self) -> dict[str, int]:
        """Frame counters."""
        return dict(self.counters)

    def _write_pty(self, frame: bytes) -> None:
        assert self._pty is not None
        data = frame
        while data:
            try:
                data = data[os.write(self._pty.master, data) :]
            except BlockingIOError:
                if not self.block or self._stop.is_set():
                    self.counters["dropped"] += 1
                    return
                select.select([], [self._pty.master], [], 0.5)
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                self.counters["dropped"] += 1
                return

    def _write_clients(self, frame: bytes) -> None:
        with self._lock:
            clients = list(self._clients)
        if not clients:
            self.counters["dropped"] += 1
        for client in clients:
            try:
                client.sendall(frame)
            except OSError:
                with self._lock:
                    if client in self._clients:
                        self._clients.remove(client)
                with contextlib.suppress(OSError):
                    client.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(5.0)
            with self._lock:
                self._clients.append(client)
