"""Frames/s one ASCII serial reader sustains over a pty, and Modbus RTU registers/s per bus.

    .venv/bin/python -m bench.serial_throughput [--frames 50000] [--seconds 10] [--json PATH]

A pty has no baud-rate limit, so these are the reader's CPU ceilings; on a real line the wire is
the limit (115200 baud ≈ 140 frames/s of 80 bytes).
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from bench.common import report
from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.modbus_poller import ModbusPoller
from collector.serial.settings import AsciiPortSettings, ModbusBusSettings, ModbusDeviceSettings
from device_sims.engine import Sample
from device_sims.registers import builtin_map, builtin_map_path
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.serial_ascii import SerialAsciiLine
from telemetry.reading import Reading

T0 = 1_795_392_000_000_000_000


class Counting:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def put(self, readings: list[Reading]) -> None:
        with self.lock:
            self.count += len(readings)

    def reject(self, reason: str, detail: str, payload: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


def ascii_rate(frames: int) -> dict[str, float]:
    line = SerialAsciiLine("bench", block=True)
    line.start()
    sink = Counting()
    reader = AsciiFrameReader(AsciiPortSettings(url=line.url, site="s", baudrate=115200), sink)
    reader.start()
    reader.connected.wait(10)
    values = {"motor_speed": 1467.0, "belt_speed": 2.467, "motor_temp": 55.5, "current": 12.25}

    def write_all() -> None:
        for i in range(frames):
            line.send(Sample("s", f"c{i % 8}", T0 + i, values))

    writer = threading.Thread(target=write_all)
    started = time.perf_counter()
    writer.start()
    while sink.count < frames and time.perf_counter() - started < 120:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    writer.join()
    reader.stop()
    line.close()
    return {
        "frames": sink.count,
        "frames_per_s": round(sink.count / elapsed),
        "rejected": sum(reader.rejected.values()),
    }


def modbus_rate(seconds: float) -> dict[str, float]:
    kinds = {"pump-1": (1, "pump"), "fan-2": (2, "fan"), "conv-3": (3, "conveyor")}
    line = ModbusRtuLine("bench", {a: (u, builtin_map(k)) for a, (u, k) in kinds.items()})
    line.start()
    for asset, (_, kind) in kinds.items():
        values = {r.sensor: 10.0 for r in builtin_map(kind).registers}
        line.send(Sample("s", asset, T0, values))
    line.tick(T0)
    devices = [
        ModbusDeviceSettings(
            unit_id=u, asset=a, register_map=Path(builtin_map_path(k)), poll_interval_s=0.001
        )
        for a, (u, k) in kinds.items()
    ]
    poller = ModbusPoller(
        ModbusBusSettings(url=line.url, site="s", baudrate=19200, devices=devices), Counting()
    )
    poller.start()
    time.sleep(seconds)
    poller.stop()
    line.close()
    registers = sum(d.polls_ok * sum(b.count for b in d.blocks) for d in poller.devices)
    polls = sum(d.polls_ok for d in poller.devices)
    return {
        "seconds": seconds,
        "polls_per_s": round(polls / seconds, 1),
        "registers_per_s": round(registers / seconds),
        "errors": sum(poller.errors.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    report(
        "serial_throughput",
        {"ascii": ascii_rate(args.frames), "modbus": modbus_rate(args.seconds)},
        args.json,
    )


if __name__ == "__main__":
    main()
