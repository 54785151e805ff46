"""Serial sources wired into the collector: every configured port feeds the durable spool.

A serial device cannot be told to wait, so backpressure here means the reader blocks while the
spool is full (bytes then queue in the OS and the device's own buffer); nothing read is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from collector.capacity import SpoolCapacity
from collector.errors import SpoolFullError
from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.modbus_poller import ModbusPoller
from collector.serial.settings import AsciiPortSettings, SerialPortSettings
from collector.spool import Spool, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.reading import Reading


class SpoolSink:
    """Formats readings as line protocol and returns once they are committed to the spool."""

    def __init__(
        self, spool: Spool, capacity: SpoolCapacity, topic: str, stop: threading.Event,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        self._spool = spool
        self._capacity = capacity
        self._topic = topic
        self._stop = stop
        self._clock = clock_ns
        self._formatter = LineFormatter()
        self.readings = 0

    def __call__(self, readings: list[Reading]) -> None:
        body = self._formatter.lines(readings)
        entry = SpoolEntry(self._topic, body, len(readings), self._clock())
        while True:
            while self._capacity.should_hold() and not self._stop.wait(0.05):
                pass  # full: wait for the writer to free space (the stop event ends the wait)
            try:
                self._spool.append([entry])
                break
            except SpoolFullError:
                if self._stop.is_set():
                    raise
                self._capacity.disk_full()  # the disk filled first: hold back the same way
        self.readings += len(readings)


class SerialSources:
    """Starts one reader thread per ASCII port and one poller thread per Modbus bus."""

    def __init__(
        self, ports: list[SerialPortSettings], spool: Spool, capacity: SpoolCapacity
    ) -> None:
        self._stop = threading.Event()
        self.readers: list[AsciiFrameReader | ModbusPoller] = []
        for port in ports:
            sink = SpoolSink(spool, capacity, f"serial:{port.url}", self._stop)
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
