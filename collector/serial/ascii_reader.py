"""Reads ASCII frames from a serial port into readings, rejecting and counting bad frames."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import serial

from collector.serial.clock import ReceiptClock
from collector.serial.frames import MAX_FRAME_BYTES, Frame, FrameError, parse_frame
from collector.serial.port import PortOpener, PortSupervisor, open_port
from collector.serial.ratelog import RateLimitedLog
from collector.serial.sequence import SequenceTracker
from collector.serial.settings import AsciiPortSettings
from collector.sources.base import ReadingFeed, Spawn, plain_thread
from telemetry.errors import PayloadError
from telemetry.reading import Reading, build_reading

log = logging.getLogger(__name__)

# Bits per byte on the wire for 8N1-like framing: start + data + parity + stop.
_START_BIT = 1


class AsciiFrameReader:
    """One port's reader thread: frames → readings or dead letters → feed; never dies on bad
    input. Each read's frames are handed over together, and the next read waits until they are
    committed (``ReadingFeed.flush``)."""

    def __init__(
        self,
        settings: AsciiPortSettings,
        feed: ReadingFeed,
        *,
        clock: ReceiptClock | None = None,
        opener: PortOpener = open_port,
        spawn: Spawn = plain_thread,
    ) -> None:
        self.settings = settings
        self._feed = feed
        self._clock = clock or ReceiptClock()
        self._stop = threading.Event()
        self._sequences = SequenceTracker()
        self._ratelog = RateLimitedLog(log)
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.missing_frames = 0
        self.outages: list[float] = []
        self._supervisor = PortSupervisor(
            settings, self._session, self._stop, opener, self.outages.append
        )
        self._spawn = spawn
        self._thread: threading.Thread | None = None
        bits = settings.bytesize + _START_BIT + (settings.parity != "N") + settings.stopbits
        self._ns_per_byte = int(bits * 1e9 / settings.baudrate)

    @property
    def connected(self) -> threading.Event:
        """Set while the port is open."""
        return self._supervisor.connected

    @property
    def port(self) -> PortSupervisor:
        """The reopen loop: why the port is not open, and its failures by kind."""
        return self._supervisor

    def start(self) -> None:
        self._thread = self._spawn(f"serial-{self.settings.url}", self._supervisor.run, self._stop)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _session(self, port: serial.SerialBase) -> None:
        buffer = bytearray()
        discarding = False  # inside an overlong line: drop bytes up to the next line end
        while not self._stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) > MAX_FRAME_BYTES and not discarding:
                        self._reject("overlong", f"line longer than {MAX_FRAME_BYTES} bytes",
                                     bytes(buffer[:MAX_FRAME_BYTES]))  # fmt: skip
                        discarding = True
                    if discarding:
                        buffer.clear()
                    break
                line, buffer = bytes(buffer[: end + 1]), buffer[end + 1 :]
                if discarding:
                    discarding = False
                    continue
                self.handle_line(line)
            # Everything this read held is committed before the port is read again: what the
            # reader took is durable, and the rest waits in the OS and device buffers.
            self._feed.flush()

    def handle_line(self, line: bytes) -> None:
        """Parse and validate one line into the feed (public so tests and tools can feed
        lines; the feed's ``flush`` hands them over)."""
        received = self._clock.now_ns() - len(line) * self._ns_per_byte
        if not line.strip():
            return
        start = line.rfind(b"$")
        if start > 0:
            # A frame start inside the line: what precedes it is a cut frame (a device reset or
            # a lost line end). Resynchronise on the last '$' so the frame after it is kept.
            self._reject("truncated", f"{start} bytes before a frame start", line[:start])
            line = line[start:]
        try:
            frame = parse_frame(line)
            reading = self._to_reading(frame, received)
        except (FrameError, PayloadError) as exc:
            self._reject(exc.reason, str(exc), line)
            return
        self._feed.put([reading])
        self.accepted += 1

    def _to_reading(self, frame: Frame, received_ns: int) -> Reading:
        mapping = self.settings.assets
        asset = mapping.get(frame.asset) if mapping else frame.asset
        if asset is None:
            raise FrameError("unknown_asset", f"asset {frame.asset!r} is not mapped on this port")
        allowed = self.settings.sensors
        if allowed is not None:
            unknown = sorted(set(frame.values) - set(allowed))
            if unknown:
                raise FrameError("unknown_key", f"unexpected keys {', '.join(unknown)}")
        verdict = self._sequences.observe(frame.asset, frame.seq)
        if verdict.duplicate:
            raise FrameError("duplicate_sequence", f"{frame.asset} sequence {frame.seq} again")
        if verdict.missing:
            self.missing_frames += verdict.missing
            self._ratelog.warning(
                "gap", "serial %s: %d frame(s) of %s missing before sequence %d",
                self.settings.url, verdict.missing, frame.asset, frame.seq,
            )  # fmt: skip
        time_ns = received_ns
        if self.settings.timestamps == "device" and frame.device_time_ms is not None:
            time_ns = frame.device_time_ms * 1_000_000
        return build_reading(
            site=self.settings.site, asset=asset, time_ns=time_ns, sensors=frame.values
        )

    def _reject(self, reason: str, message: str, raw: bytes) -> None:
        # A dead letter (logged, rate-limited, by the committer like every other one).
        self.rejected[reason] += 1
        self._feed.reject(reason, message, raw)
