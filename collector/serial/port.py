"""Opening serial ports through pyserial URLs, and the reopen-with-backoff loop around a session."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import serial

from collector.serial.settings import SerialLineSettings

log = logging.getLogger(__name__)

PortOpener = Callable[[SerialLineSettings], serial.SerialBase]


def open_port(settings: SerialLineSettings) -> serial.SerialBase:
    """Open a device path or pyserial URL (pty, socket://, rfc2217://) with the line settings."""
    return serial.serial_for_url(
        settings.url,
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=settings.timeout_s,
    )


class PortSupervisor:
    """Keeps a port open: runs ``session(port)`` and reopens with backoff when the port fails.

    ``session`` returns when asked to stop and raises ``serial.SerialException``/``OSError`` when
    the port goes away (cable pulled, device closed); outages are reported once each, with their
    duration when the port comes back.
    """

    def __init__(
        self,
        settings: SerialLineSettings,
        session: Callable[[serial.SerialBase], None],
        stop: threading.Event,
        opener: PortOpener = open_port,
        on_outage: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self._session = session
        self._stop = stop
        self._opener = opener
        self._on_outage = on_outage
        self.reopens = 0
        self.connected = threading.Event()
        # Why the port is not open (None while open, or before the first attempt), and the
        # failures so far by kind: what the source's health and /metrics report.
        self.error: str | None = None
        self.errors: Counter[str] = Counter()

    def run(self) -> None:
        """Loop until ``stop`` is set."""
        delay = self.settings.reopen_initial_s
        outage_since: float | None = None
        while not self._stop.is_set():
            try:
                port = self._opener(self.settings)
            except (serial.SerialException, OSError) as exc:
                self.errors["port_unavailable"] += 1
                self.error = f"cannot open {self.settings.url}: {exc}"
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("serial %s unavailable (%s); retrying", self.settings.url, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.reopen_max_s)
                continue
            if outage_since is not None:
                outage = time.monotonic() - outage_since
                log.warning("serial %s back after %.1f s", self.settings.url, outage)
                if self._on_outage:
                    self._on_outage(outage)
                self.reopens += 1
                outage_since = None
            delay = self.settings.reopen_initial_s
            self.error = None
            self.connected.set()
            try:
                self._session(port)
            except (serial.SerialException, OSError) as exc:
                outage_since = time.monotonic()
                self.errors["port_lost"] += 1
                self.error = f"{self.settings.url} lost: {exc}"
                log.warning("serial %s lost (%s); reopening", self.settings.url, exc)
            finally:
                self.connected.clear()
                port.close()
