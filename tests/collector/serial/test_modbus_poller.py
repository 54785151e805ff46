"""Modbus RTU polling of several simulated devices on one pty bus (device_sims' pymodbus server)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from collector.serial.modbus_poller import ModbusPoller
from collector.serial.registers import load_register_map
from collector.serial.settings import ModbusBusSettings, ModbusDeviceSettings
from device_sims.engine import Sample
from device_sims.registers import builtin_map, builtin_map_path
from device_sims.transports import modbus_rtu
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.pty import PtyRelay
from stack.process import wait_until
from telemetry.reading import Reading

T0 = 1_795_392_000_000_000_000
DEVICES = {"pump-m01": (1, "pump"), "fan-m02": (2, "fan"), "conv-m03": (3, "conveyor")}


class Collected:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.lock = threading.Lock()

    def __call__(self, readings: list[Reading]) -> None:
        with self.lock:
            self.readings.extend(readings)

    def latest(self, asset: str) -> Reading | None:
        with self.lock:
            return next((r for r in reversed(self.readings) if r.asset == asset), None)


def bus_settings(
    url: str, extra_units: tuple[int, ...] = (), interval: float = 0.05
) -> ModbusBusSettings:
    devices = [
        ModbusDeviceSettings(unit_id=unit, asset=asset, register_map=builtin_map_path(kind),
                             poll_interval_s=interval)
        for asset, (unit, kind) in DEVICES.items()
    ] + [
        ModbusDeviceSettings(unit_id=unit, asset=f"ghost-{unit}",
                             register_map=builtin_map_path("pump"), poll_interval_s=interval)
        for unit in extra_units
    ]  # fmt: skip
    return ModbusBusSettings(url=url, site="plant-a", baudrate=9600, timeout_s=0.3,
                             devices=devices, dead_after=2, dead_poll_interval_s=5.0)  # fmt: skip


def sample_values(kind: str, step: int, rng: random.Random) -> dict[str, float]:
    """Values every register type can carry: quantised to each register's scale."""
    values = {}
    for register in load_register_map(builtin_map_path(kind)):
        if register.type == "float32":
            values[register.sensor] = rng.uniform(-50, 500)
        else:
            low = -300 if register.type.startswith("int") else 0
            values[register.sensor] = round(rng.randint(low, 3000) + step, 0) * register.scale
    return values


@pytest.fixture
def bus() -> Iterator[ModbusRtuLine]:
    units = {asset: (unit, builtin_map(kind)) for asset, (unit, kind) in DEVICES.items()}
    line = ModbusRtuLine("rs485-test", units, baudrate=9600)
    line.start()
    yield line
    line.close()


def test_three_devices_decode_correctly_over_simulated_minutes(bus: ModbusRtuLine) -> None:
    collected = Collected()
    poller = ModbusPoller(bus_settings(bus.url), collected)
    poller.start()
    rng = random.Random(7)
    try:
        for step in range(36):  # three simulated minutes at a 5 s sample interval
            now = T0 + step * 5 * 10**9
            sent = {}
            for asset, (_, kind) in DEVICES.items():
                sent[asset] = sample_values(kind, step, rng)
                bus.send(Sample("plant-a", asset, now, sent[asset]))
            bus.tick(now)
            marker = len(collected.readings)

            def all_polled(marker: int = marker) -> bool:
                with collected.lock:
                    fresh = {r.asset for r in collected.readings[marker:]}
                return fresh == set(DEVICES)

            wait_until(all_polled, timeout=10, what=f"a poll of every device at step {step}")
            time.sleep(0.06)  # one more poll interval so the newest values are the ones sent
            wait_until(lambda: all_polled(len(collected.readings) - 3), timeout=10, what="repoll")
            for asset, (_, kind) in DEVICES.items():
                reading = collected.latest(asset)
                assert reading is not None
                for register in load_register_map(builtin_map_path(kind)):
                    expected = sent[asset][register.sensor]
                    got = reading.values[register.sensor]
                    if register.type == "float32":
                        assert got == pytest.approx(expected, rel=1e-6)
                    else:  # scaled integers: exact to the register's resolution
                        assert got == pytest.approx(expected, abs=register.scale / 2)
    finally:
        poller.stop()
    assert poller.errors == {}


class NoisyRelay(PtyRelay):
    """A null-modem cable that flips a bit in some device answers (CRC errors on the client)."""

    rate = 0.15

    def __init__(self) -> None:
        super().__init__()
        self._rng = random.Random(3)
        self.corrupted = 0

    def _write_all(self, fd: int, data: bytes) -> None:
        if fd == self.client_side.master and self._rng.random() < self.rate:
            index = self._rng.randrange(len(data))
            data = data[:index] + bytes([data[index] ^ 0x10]) + data[index + 1 :]
            self.corrupted += 1
        super()._write_all(fd, data)


class UnplugUnit9Relay(PtyRelay):
    """A bus on which unit 9 is configured but disconnected: its requests are never answered.

    (The simulator's server answers every unit id, as a gateway would; a real RS-485 bus stays
    silent for an absent slave, so the requests to unit 9 are dropped on the wire here.)
    """

    def _write_all(self, fd: int, data: bytes) -> None:
        if fd == self.device_side.master and data[:1] == b"\x09":
            return
        super()._write_all(fd, data)


def poll_rate(poller: ModbusPoller, asset: str, since: float) -> float:
    times = [t for t in poller.device(asset).poll_times if t >= since]
    return (len(times) - 1) / (times[-1] - times[0])


def start_line(units_from: dict[str, tuple[int, str]]) -> ModbusRtuLine:
    units = {asset: (unit, builtin_map(kind)) for asset, (unit, kind) in units_from.items()}
    line = ModbusRtuLine("rs485-t", units, baudrate=9600)
    line.start()
    rng = random.Random(1)
    for asset, (_, kind) in units_from.items():
        line.send(Sample("plant-a", asset, T0, sample_values(kind, 0, rng)))
    line.tick(T0)
    return line


def test_crc_errors_are_retried_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modbus_rtu, "PtyRelay", NoisyRelay)
    line = start_line(DEVICES)
    collected = Collected()
    poller = ModbusPoller(bus_settings(line.url, interval=0.2), collected)
    poller.start()
    try:
        time.sleep(5.0)
    finally:
        poller.stop()
        line.close()
    relay = line._relay
    assert isinstance(relay, NoisyRelay)
    assert relay.corrupted > 0
    failures = poller.errors["no_response"] + poller.errors["garbled_response"]
    assert failures >= relay.corrupted // 2  # each corrupted answer cost a retry, counted
    for asset in DEVICES:
        assert not poller.device(asset).dead
        assert poller.device(asset).polls_ok > 5
    with collected.lock:
        assert {r.asset for r in collected.readings} == set(DEVICES)


def test_a_dead_device_does_not_stall_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modbus_rtu, "PtyRelay", UnplugUnit9Relay)
    line = start_line(DEVICES)
    collected = Collected()
    # Unit 9 is configured but absent from the bus: it never answers.
    poller = ModbusPoller(bus_settings(line.url, extra_units=(9,), interval=0.2), collected)
    poller.start()
    try:
        wait_until(lambda: poller.device("ghost-9").dead, timeout=10, what="unit 9 declared dead")
        dead_since = time.monotonic()
        time.sleep(8.0)
    finally:
        poller.stop()
        line.close()
    assert poller.device("ghost-9").polls_ok == 0
    assert poller.errors["no_response"] >= 2 * 3  # two polls with two retries each, at least
    rates = {asset: poll_rate(poller, asset, dead_since) for asset in DEVICES}
    print(f"poll rates with a dead unit on the bus (configured 5.0/s): {rates}")
    # One 0.3 s probe of the dead unit every 5 s takes about 6% of the bus's time.
    assert all(rate > 4.0 for rate in rates.values()), rates
