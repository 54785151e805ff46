"""Serial sources wired into the collector: every configured port feeds the durable spool.

A serial device cannot be told to wait, so backpressure here means the reader blocks while the
spool is full (bytes then queue in the OS and the device's own buffer); nothing read is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.modbus_poller import ModbusPoller
from collector.serial.settings import AsciiPortSettings, SerialPortSettings
from collector.spool import Spool, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.reading import Reading


class SpoolSink:
    """Formats readings as line protocol and returns once they are committed to the spool."""

    def __init__(
        self, spool: Spool, max_bytes: int, topic: str, stop: threading.Event,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        self._spool = spool
        self._max_bytes = max_bytes
        self._topic = topic
        self._stop = stop
        self._clock = clock_ns
        self._formatter = LineFormatter()
        self.readings = 0

    def __call__(self, readings: list[Reading]) -> None:
        while self._spool.bytes >= self._max_bytes and not self._stop.wait(0.05):
            pass  # full: wait for the writer to free space (the stop event ends the wait)
        body = self._formatter.lines(readings)
        self._spool.append([SpoolEntry(self._topic, body, len(readings), self._clock())])
        self.readings += len(readings)


class SerialSources:
    """Starts one reader thread per ASCII port and one poller thread per Modbus bus."""

    def __init__(self, ports: list[SerialPortSettings], spool: Spool, max_bytes: int) -> None:
        self._stop = threading.Event()
        self.readers: list[AsciiFrameReader | ModbusPoller] = []
        for port in ports:
            sink = SpoolSink(spool, max_bytes, f"serial:{port.url}", self._stop)
            if isinstance(port, AsciiPortSettings):
                self.readers.append(AsciiFrameReader(port, sink))
            else:
                self.readers.append(ModbusPoller(port, sink))

    def start(self) -> None:
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        self._stop.set()
        for reader in self.readers:
            reader.stop()
