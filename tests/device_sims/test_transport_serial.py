"""Serial ASCII frames on a pty and on socket://; Modbus RTU registers over a pty."""

from __future__ import annotations

import time

import pytest
import serial
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient

from device_sims.engine import Sample
from device_sims.formats import FrameError, checksum, parse_serial_frame
from device_sims.registers import builtin_map
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.serial_ascii import SerialAsciiLine
from stack.process import wait_until

T0 = 1_795_392_000_000_000_000


def _read_frames(port: serial.SerialBase, count: int, timeout_s: float = 10.0) -> list[bytes]:
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(lines) < count and time.monotonic() < deadline:
        line = port.readline()
        if line:
            lines.append(line)
    return lines


@pytest.mark.parametrize("listen", [None, "socket://127.0.0.1:0"])
def test_serial_reader_receives_valid_checksummed_frames(listen: str | None) -> None:
    line = SerialAsciiLine("ascii-t", listen=listen)
    line.start()
    try:
        port = serial.serial_for_url(line.url, baudrate=19200, timeout=0.5)
        try:
            if listen:  # frames go to accepted TCP clients only: wait for the accept
                wait_until(lambda: bool(line._clients), timeout=10, what="the TCP client accepted")
            for i in range(5):
                for asset in ("conv-01", "conv-02"):
                    line.send(
                        Sample(
                            "plant-a",
                            asset,
                            T0 + i * 10**9,
                            {"belt_speed": 2.5 + i / 100, "motor_temp": 55.5},
                        )
                    )
            frames = _read_frames(port, 10)
        finally:
            port.close()
    finally:
        line.close()
    assert len(frames) == 10
    for raw in frames:
        assert raw.endswith(b"\r\n")
        assert raw.startswith(b"$")
        assert len(raw) <= 512
        body, cs = raw[1:].split(b"*")
        assert f"{checksum(body):02X}".encode() == cs.strip()
    parsed = [parse_serial_frame(f) for f in frames]
    assert [(a, s) for a, s, _, _ in parsed[:4]] == [
        ("conv-01", 0),
        ("conv-02", 0),
        ("conv-01", 1),
        ("conv-02", 1),
    ]
    assert parsed[2][2] == {"belt_speed": 2.51, "motor_temp": 55.5}
    assert parsed[2][3] == T0 // 10**6 + 1000


def test_line_noise_makes_frames_fail_their_checksum() -> None:
    line = SerialAsciiLine("noisy", error_rate=1.0, seed=3)
    line.start()
    try:
        port = serial.serial_for_url(line.url, timeout=0.5)
        line.send(Sample("plant-a", "conv-01", T0, {"belt_speed": 2.5}))
        (frame,) = _read_frames(port, 1)
        port.close()
    finally:
        line.close()
    with pytest.raises(FrameError):
        parse_serial_frame(frame)


def test_modbus_client_reads_float32_and_scaled_int16_over_a_pty() -> None:
    pump_map = builtin_map("pump")
    line = ModbusRtuLine(
        "rs485-t", {"pump-m01": (2, pump_map), "comp-01": (1, builtin_map("compressor"))}
    )
    line.start()
    values = {
        "flow": 101.3,
        "suction_pressure": 1.125,
        "discharge_pressure": 4.5,
        "vibration_rms": 2.25,
        "speed_rpm": 2710.0,
        "motor_current": 27.43,
        "voltage": 398.2,
        "bearing_temp": -3.7,
        "motor_temp": 61.9,
    }
    line.send(Sample("plant-a", "pump-m01", T0, values))
    line.tick(T0)
    client = ModbusSerialClient(line.url, framer=FramerType.RTU, baudrate=19200, timeout=2)
    try:
        assert client.connect()
        inputs = client.read_input_registers(0, count=8, device_id=2)
        holding = client.read_holding_registers(0, count=5, device_id=2)
        assert not inputs.isError()
        assert not holding.isError()
        decoded = {}
        for reg in pump_map.registers:
            words = list(inputs.registers) if reg.function == "input" else list(holding.registers)
            decoded[reg.sensor] = reg.decode(words[reg.address : reg.address + reg.count])
        assert decoded["flow"] == pytest.approx(101.3, rel=1e-6)  # float32
        assert decoded["vibration_rms"] == pytest.approx(2.25)
        assert decoded["bearing_temp"] == pytest.approx(-3.7)  # int16, scale 0.1, negative
        assert decoded["motor_current"] == pytest.approx(27.43)  # uint16, scale 0.01
        assert holding.registers[3] == 0xFFDB  # -37 as two's complement int16
        # The other unit on the same RS-485 line answers too (no reading yet: sentinels).
        other = client.read_holding_registers(0, count=1, device_id=1)
        assert not other.isError()
        assert other.registers == [0xFFFF]
        # An asset that stopped sending goes quiet: gateway target failed to respond.
        line.tick(T0 + 3600 * 10**9)
        silent = client.read_input_registers(0, count=2, device_id=2)
        assert silent.isError()
        assert silent.exception_code == 11
    finally:
        client.close()
        line.close()
