"""Polls the devices of one Modbus RTU bus in turn (pymodbus over pyserial) into readings.

Each poll reads a device's register blocks; a CRC error or timeout is retried within a bounded
budget and counted. A device that fails ``dead_after`` polls in a row is reported dead and only
probed every ``dead_poll_interval_s``, so the other devices on the bus keep their poll rate.
Bad input is a dead letter with what came over the wire: an answer whose CRC fails (pymodbus
drops it silently and times out, so the raw bytes are watched through its ``trace_packet``
hook), and a value that is no reading (``registers.BadValueError``, or the reading contract's own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU

from collector.serial.clock import ReceiptClock
from collector.serial.registers import (
    BadValueError,
    Block,
    decode_block,
    load_register_map,
    plan_blocks,
)
from collector.serial.settings import ModbusBusSettings, ModbusDeviceSettings
from collector.sources.base import ReadingFeed, Spawn, plain_thread
from telemetry.errors import PayloadError
from telemetry.reading import build_reading

log = logging.getLogger(__name__)

Trace = Callable[[bool, bytes], bytes]
ClientFactory = Callable[[ModbusBusSettings, Trace], Any]


def make_client(settings: ModbusBusSettings, trace_packet: Trace | None = None) -> Any:
    """A pymodbus RTU client; retries are ours (counted), so pymodbus makes one attempt."""
    return ModbusSerialClient(
        settings.url, framer=FramerType.RTU, baudrate=settings.baudrate,
        bytesize=settings.bytesize, parity=settings.parity, stopbits=int(settings.stopbits),
        timeout=settings.timeout_s, retries=0, trace_packet=trace_packet,
    )  # fmt: skip


class AnswerTap:
    """Sees each answer's bytes as pymodbus receives them (its ``trace_packet`` hook).

    pymodbus drops an answer whose CRC fails and then times out, so only here can such an
    answer be told from silence and kept as a dead letter. ``frame`` is the last answer's
    bytes (a good one's raw frame, for a dead letter about its values).
    """

    def __init__(self) -> None:
        self._size = 0
        self.frame = b""
        self.bad_crc: bytes | None = None

    def expect(self, registers: int) -> None:
        """A read of ``registers`` registers goes out: its answer is 5 + 2 × that many bytes."""
        self._size, self.frame, self.bad_crc = 5 + 2 * registers, b"", None

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if sending or len(data) < 5:
            return data
        self.frame = bytes(data)
        size = 5 if data[1] & 0x80 else self._size  # an exception answer is 5 bytes
        if self.bad_crc is None and len(data) >= size:
            crc = (data[size - 2] << 8) | data[size - 1]
            if not FramerRTU.check_CRC(bytes(data[: size - 2]), crc):
                self.bad_crc = bytes(data[:size])
        return data


@dataclass
class DeviceState:
    """Poll bookkeeping of one slave."""

    settings: ModbusDeviceSettings
    blocks: list[Block]
    next_due: float = 0.0
    failures_in_a_row: int = 0
    dead: bool = False
    polls_ok: int = 0
    polls_failed: int = 0
    poll_times: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def last_answer_age_s(self) -> float | None:
        """Seconds since it last answered a whole poll (None: never)."""
        return time.monotonic() - self.poll_times[-1] if self.poll_times else None


class ModbusPoller:
    """One bus: a thread that polls every device at its interval and hands readings to a feed
    (each round of polls is committed before the next begins)."""

    def __init__(
        self,
        settings: ModbusBusSettings,
        feed: ReadingFeed,
        *,
        client_factory: ClientFactory = make_client,
        clock: ReceiptClock | None = None,
        spawn: Spawn = plain_thread,
    ) -> None:
        self.settings = settings
        self._feed = feed
        self._spawn = spawn
        self._tap = AnswerTap()
        self.connected = threading.Event()  # set while the port is open
        self.port_error: str | None = None  # why the port is not open (None: open, or not yet)
        self._client_factory = client_factory
        self._clock = clock or ReceiptClock()
        self._stop = threading.Event()
        self.devices = [
            DeviceState(d, plan_blocks(load_register_map(d.register_map))) for d in settings.devices
        ]
        self.errors: Counter[str] = Counter()
        self.connects = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = self._spawn(f"modbus-{self.settings.url}", self._run, self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def device(self, asset: str) -> DeviceState:
        """The state of the device serving ``asset``."""
        return next(d for d in self.devices if d.settings.asset == asset)

    def _run(self) -> None:
        client: Any = None
        delay = self.settings.reopen_initial_s
        while not self._stop.is_set():
            if client is None:
                client = self._client_factory(self.settings, self._tap)
            if not client.connect():
                self.errors["port_unavailable"] += 1
                self.port_error = f"cannot open {self.settings.url}"
                self.connected.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.reopen_max_s)
                continue
            if delay != self.settings.reopen_initial_s or self.connects == 0:
                self.connects += 1
                delay = self.settings.reopen_initial_s
            self.port_error = None
            self.connected.set()
            try:
                self._poll_due(client)
            except (serial.SerialException, OSError) as exc:
                self.errors["port_lost"] += 1
                self.port_error = f"{self.settings.url} lost: {exc}"
                self.connected.clear()
                log.warning("modbus %s: port lost (%s); reopening", self.settings.url, exc)
                client.close()
                client = None
            finally:
                self._feed.flush()  # this round's readings and dead letters are committed
        self.connected.clear()
        if client is not None:
            client.close()

    def _poll_due(self, client: Any) -> None:
        now = time.monotonic()
        due = [d for d in self.devices if d.next_due <= now]
        if not due:
            wait = min(d.next_due for d in self.devices) - now
            self._stop.wait(min(wait, self.settings.timeout_s))
            return
        for device in sorted(due, key=lambda d: d.next_due):
            if self._stop.is_set():
                return
            self._poll(client, device)

    def _poll(self, client: Any, device: DeviceState) -> None:
        values: dict[str, float] = {}
        frames: list[bytes] = []
        bad: BadValueError | None = None
        for block in device.blocks:
            words = self._read_with_retries(client, device, block)
            if words is None:
                self._failed(device)
                return
            frames.append(self._tap.frame)
            try:
                values.update(decode_block(block, words))
            except BadValueError as exc:
                bad = exc
        received = self._clock.now_ns()
        device.polls_ok += 1
        device.poll_times.append(time.monotonic())
        device.next_due = max(device.next_due + device.settings.poll_interval_s, time.monotonic())
        if device.dead:
            log.warning("modbus %s: unit %d (%s) answers again", self.settings.url,
                        device.settings.unit_id, device.settings.asset)  # fmt: skip
        device.dead, device.failures_in_a_row = False, 0
        if bad is not None:
            self._reject(device, bad.reason, str(bad), frames)
            return
        if not values:
            self.errors["no_values"] += 1
            return
        try:
            reading = build_reading(site=self.settings.site, asset=device.settings.asset,
                                    time_ns=received, sensors=values)  # fmt: skip
        except PayloadError as exc:
            self._reject(device, exc.reason, str(exc), frames)
            return
        self._feed.put([reading])

    def _reject(self, device: DeviceState, reason: str, message: str, frames: list[bytes]) -> None:
        """A dead letter: the poll's answers as they came over the wire, and why."""
        unit = device.settings
        detail = f"unit {unit.unit_id} ({unit.asset}): {message}"
        self._feed.reject(reason, detail, b"".join(frames))

    def _read_with_retries(
        self, client: Any, device: DeviceState, block: Block
    ) -> list[int] | None:
        read = client.read_holding_registers if block.function == "holding" else (
            client.read_input_registers)  # fmt: skip
        # A dead device gets one attempt per probe: its timeouts must not eat the bus's time.
        attempts = 1 if device.dead else 1 + self.settings.retries
        for _attempt in range(attempts):
            self._tap.expect(block.count)
            try:
                response = read(block.start, count=block.count, device_id=device.settings.unit_id)
            except ModbusException as exc:
                # pymodbus drops a frame whose CRC fails and then times out waiting: both show
                # here as "no valid response"; the tap saw which it was.
                bad = self._tap.bad_crc
                if bad is not None:
                    where = f"{block.function} {block.start}+{block.count}"
                    self._reject(device, "bad_crc", f"the answer to {where} failed its CRC", [bad])
                else:
                    self.errors["no_response" if "No response" in str(exc) else "modbus_error"] += 1
                continue
            except (serial.SerialException, OSError):
                raise  # the port itself is gone: the run loop reopens it
            except Exception as exc:
                self.errors["garbled_response"] += 1
                log.debug("modbus %s: garbled answer: %r", self.settings.url, exc)
                continue
            if response.isError():
                self.errors[f"exception_{getattr(response, 'exception_code', 0)}"] += 1
                return None  # the device answered: retrying the same request cannot help
            if len(response.registers) != block.count:
                self.errors["short_response"] += 1
                continue
            return list(response.registers)
        return None

    def _failed(self, device: DeviceState) -> None:
        device.polls_failed += 1
        device.failures_in_a_row += 1
        if device.failures_in_a_row >= self.settings.dead_after and not device.dead:
            device.dead = True
            log.error("modbus %s: unit %d (%s) is not answering; probing every %.0f s",
                      self.settings.url, device.settings.unit_id, device.settings.asset,
                      self.settings.dead_poll_interval_s)  # fmt: skip
        interval = (self.settings.dead_poll_interval_s if device.dead
                    else device.settings.poll_interval_s)  # fmt: skip
        device.next_due = time.monotonic() + interval
