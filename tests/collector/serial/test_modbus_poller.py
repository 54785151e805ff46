"""Modbus RTU polling of several simulated devices on one pty bus (device_sims' pymodbus server)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from functools import partial

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
    """A reading feed that keeps what it is given (readings, and bad answers by reason)."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.rejected: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()

    def put(self, readings: list[Reading]) -> None:
        with self.lock:
            self.readings.extend(readings)

    def reject(self, reason: str, detail: str, payload: bytes) -> None:
        with self.lock:
            self.rejected.append((reason, detail, payload))

    def flush(self) -> None:
        pass

    def latest(self, asset: str) -> Reading | None:
        with self.lock:
            return next((r for r in reversed(self.readings) if r.asset == asset), None)


def bus_settings(
    url: str, extra_units: tuple[int, ...] = (), interval: float = 0.05, dead_poll_s: float = 5.0
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
                             devices=devices, dead_after=2,
                             dead_poll_interval_s=dead_poll_s)  # fmt: skip


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
            # A poll in flight during send() may have returned the old values; each device's
            # next poll began after its first one here ended, so after the send: wait for it.
            with collected.lock:
                repoll_marker = len(collected.readings)
            wait_until(partial(all_polled, repoll_marker), timeout=10, what="repoll")
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
    poller = ModbusPoller(bus_settings(line.url, interval=0.1), collected)
    relay = line._relay
    assert isinstance(relay, NoisyRelay)
    poller.start()
    try:
        wait_until(
            lambda: relay.corrupted >= 5 and all(poller.device(a).polls_ok > 5 for a in DEVICES),
            timeout=30,
            what="five corrupted answers and five good polls of every device",
        )
    finally:
        poller.stop()
        line.close()
    bad_crc = [payload for reason, _, payload in collected.rejected if reason == "bad_crc"]
    failures = poller.errors["no_response"] + poller.errors["garbled_response"] + len(bad_crc)
    assert failures >= relay.corrupted // 2  # each corrupted answer cost a retry, counted
    assert bad_crc  # a corrupted answer is a dead letter with the bytes that came
    assert all(len(payload) >= 5 for payload in bad_crc)
    for asset in DEVICES:
        assert not poller.device(asset).dead
        assert poller.device(asset).polls_ok > 5
    with collected.lock:
        assert {r.asset for r in collected.readings} == set(DEVICES)


def test_a_dead_device_does_not_stall_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modbus_rtu, "PtyRelay", UnplugUnit9Relay)
    line = start_line(DEVICES)
    collected = Collected()
    # Unit 9 is configured but absent from the bus: it never answers. Dead, it is probed every
    # 0.5 s (compressed from the default 10 s) with a single attempt.
    settings = bus_settings(line.url, extra_units=(9,), interval=0.2, dead_poll_s=0.5)
    poller = ModbusPoller(settings, collected)
    ghost = poller.device("ghost-9")
    poller.start()
    try:
        wait_until(lambda: ghost.dead, timeout=10, what="unit 9 declared dead")
        dead_since = time.monotonic()
        probes_before, timeouts_before = ghost.polls_failed, poller.errors["no_response"]
        polls_before = {asset: poller.device(asset).polls_ok for asset in DEVICES}
        wait_until(lambda: ghost.polls_failed >= probes_before + 3, timeout=20,
                   what="three probes of the dead unit")  # fmt: skip
        dead_for = time.monotonic() - dead_since
        probes = ghost.polls_failed - probes_before
        polls = {asset: poller.device(asset).polls_ok - polls_before[asset] for asset in DEVICES}
        timeouts = poller.errors["no_response"] - timeouts_before
    finally:
        poller.stop()
        line.close()
    assert ghost.polls_ok == 0
    assert ghost.dead
    # Before it was dead: two failed polls of three attempts each (one try and two retries).
    assert timeouts_before >= 2 * 3
    # Dead, it is probed on its own schedule (never more often; a slow machine probes less),
    # and each probe is one attempt, not three: its timeouts cannot eat the bus's time.
    assert probes <= dead_for / 0.5 + 1
    assert timeouts >= probes
    assert timeouts < 3 * probes
    # Meanwhile every live device went on being polled, several times per probe of the dead one
    # (5 polls/s against 2 probes/s; were the bus stalled by the dead unit, fewer).
    assert all(count >= probes for count in polls.values()), polls
