"""Polls the devices of one Modbus RTU bus in turn (pymodbus over pyserial) into readings.

Each poll reads a device's register blocks; a CRC error or timeout is retried within a bounded
budget and counted. A device that fails ``dead_after`` polls in a row is reported dead and only
probed every ``dead_poll_interval_s``, so the other devices on the bus keep their poll rate.
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

from collector.serial.clock import ReceiptClock
from collector.serial.registers import Block, decode_block, load_register_map, plan_blocks
from collector.serial.settings import ModbusBusSettings, ModbusDeviceSettings
from telemetry.errors import PayloadError
from telemetry.reading import Reading, build_reading

log = logging.getLogger(__name__)

ReadingSink = Callable[[list[Reading]], None]
ClientFactory = Callable[[ModbusBusSettings], Any]


def make_client(settings: ModbusBusSettings) -> ModbusSerialClient:
    """A pymodbus RTU client; retries are ours (counted), so pymodbus makes one attempt."""
    return ModbusSerialClient(
        settings.url, framer=FramerType.RTU, baudrate=settings.baudrate,
        bytesize=settings.bytesize, parity=settings.parity, stopbits=int(settings.stopbits),
        timeout=settings.timeout_s, retries=0,
    )  # fmt: skip


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


class ModbusPoller:
    """One bus: a thread that polls every device at its interval and hands readings to a sink."""

    def __init__(
        self,
        settings: ModbusBusSettings,
        sink: ReadingSink,
        *,
        client_factory: ClientFactory = make_client,
        clock: ReceiptClock | None = None,
    ) -> None:
        self.settings = settings
        self._sink = sink
        self._client_factory = client_factory
        self._clock = clock or ReceiptClock()
        self._stop = threading.Event()
        self.devices = [
            DeviceState(d, plan_blocks(load_register_map(d.register_map))) for d in settings.devices
        ]
        self.errors: Counter[str] = Counter()
        self.connects = 0
        self._thread = threading.Thread(target=self._run, name=f"modbus-{settings.url}")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def device(self, asset: str) -> DeviceState:
        """The state of the device serving ``asset``."""
        return next(d for d in self.devices if d.settings.asset == asset)

    def _run(self) -> None:
        client: Any = None
        delay = self.settings.reopen_initial_s
        while not self._stop.is_set():
            if client is None:
                client = self._client_factory(self.settings)
            if not client.connect():
                self.errors["port_unavailable"] += 1
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.reopen_max_s)
                continue
            if delay != self.settings.reopen_initial_s or self.connects == 0:
                self.connects += 1
                delay = self.settings.reopen_initial_s
            try:
                self._poll_due(client)
            except (serial.SerialException, OSError) as exc:
                self.errors["port_lost"] += 1
                log.warning("modbus %s: port lost (%s); reopening", self.settings.url, exc)
                client.close()
                client = None
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
        for block in device.blocks:
            words = self._read_with_retries(client, device, block)
            if words is None:
                self._failed(device)
                return
            values.update(decode_block(block, words))
        received = self._clock.now_ns()
        device.polls_ok += 1
        device.poll_times.append(time.monotonic())
        device.next_due = max(device.next_due + device.settings.poll_interval_s, time.monotonic())
        if device.dead:
            log.warning("modbus %s: unit %d (%s) answers again", self.settings.url,
                        device.settings.unit_id, device.settings.asset)  # fmt: skip
        device.dead, device.failures_in_a_row = False, 0
        if not values:
            self.errors["no_values"] += 1
            return
        try:
            reading = build_reading(site=self.settings.site, asset=device.settings.asset,
                                    time_ns=received, sensors=values)  # fmt: skip
        except PayloadError as exc:
            self.errors[exc.reason] += 1
            return
        self._sink([reading])

    def _read_with_retries(
        self, client: Any, device: DeviceState, block: Block
    ) -> list[int] | None:
        read = client.read_holding_registers if block.function == "holding" else (
            client.read_input_registers)  # fmt: skip
        # A dead device gets one attempt per probe: its timeouts must not eat the bus's time.
        attempts = 1 if device.dead else 1 + self.settings.retries
        for _attempt in range(attempts):
            try:
                response = read(block.start, count=block.count, device_id=device.settings.unit_id)
            except ModbusException as exc:
                # pymodbus drops a frame whose CRC fails and then times out waiting: both show
                # here as "no valid response".
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
