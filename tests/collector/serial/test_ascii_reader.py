"""The ASCII reader on real pseudo-terminals served by device_sims, into the real InfluxDB."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import serial

from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.frames import checksum, format_frame
from collector.serial.port import open_port
from collector.serial.settings import AsciiPortSettings, SerialLineSettings
from device_sims.engine import Sample
from device_sims.transports.pty import Pty
from device_sims.transports.serial_ascii import SerialAsciiLine
from stack.process import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.reading import Reading

T0 = 1_795_392_000_000_000_000


class InfluxSink:
    """A reading feed straight into InfluxDB: ``flush`` returns once the server confirmed
    (durable) every ``batch`` readings; bad frames are kept by reason."""

    def __init__(self, client: InfluxClient, batch: int = 500) -> None:
        self.client, self.batch = client, batch
        self.pending: list[Reading] = []
        self.stored = 0
        self.rejected: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def put(self, readings: list[Reading]) -> None:
        with self.lock:
            self.pending.extend(readings)

    def reject(self, reason: str, detail: str, payload: bytes) -> None:
        with self.lock:
            self.rejected.append((reason, payload))

    def flush(self) -> None:
        with self.lock:
            if len(self.pending) >= self.batch:
                self.write()

    def write(self) -> None:
        if self.pending:
            self.client.write_readings(self.pending)
            self.stored += len(self.pending)
            self.pending = []


def test_10000_frames_at_115200_baud_arrive_in_influxdb(influx_client: InfluxClient) -> None:
    line = SerialAsciiLine("bench", block=True)
    line.start()
    sink = InfluxSink(influx_client)
    reader = AsciiFrameReader(
        AsciiPortSettings(url=line.url, site="plant-a", baudrate=115200, timestamps="device"), sink
    )
    reader.start()
    try:
        wait_until(reader.connected.is_set, timeout=10, what="port open")
        expected = {}
        for i in range(10_000):
            asset = f"conv-{i % 4:02d}"
            values = {"belt_speed": round(2.0 + i / 10_000, 6), "motor_temp": float(i % 97)}
            line.send(Sample("plant-a", asset, T0 + i * 1_000_000, values))
            expected[(asset, T0 + i * 1_000_000)] = values
        wait_until(lambda: reader.accepted == 10_000, timeout=60, what="10,000 frames read")
    finally:
        reader.stop()
        line.close()
    with sink.lock:
        sink.write()
    stored = influx_client.read_readings(site="plant-a")
    assert len(stored) == 10_000
    assert {(r.asset, r.time_ns): r.values for r in stored} == expected
    assert reader.rejected == {}
    assert reader.missing_frames == 0


def test_corrupted_stream_stores_exactly_the_valid_frames(influx_client: InfluxClient) -> None:
    pty = Pty()
    sink = InfluxSink(influx_client, batch=1)
    reader = AsciiFrameReader(
        AsciiPortSettings(url=pty.path, site="plant-a", sensors=["flow", "temp"],
                          timestamps="device", assets={"pump-01": "pump-01", "pump-02": "pump-02"}),
        sink,
    )  # fmt: skip
    reader.start()

    def body_frame(body: str) -> bytes:
        return b"$" + body.encode() + f"*{checksum(body.encode()):02X}\r\n".encode()

    ts = T0 // 1_000_000
    valid = [format_frame("pump-01", i, {"flow": i + 0.5, "temp": 40.0}, ts + i) for i in range(20)]
    bad = {
        "bad_checksum": valid[3].replace(b"flow=3.5", b"flow=3.6"),
        "truncated": valid[4][:25] + b"\r\n",
        "binary_noise": b"\x00\x17\xfe\xff\x80garbage\r\n",
        "overlong": b"$" + b"x" * 700 + b"\r\n",
        "bad_field": body_frame(f"pump-01,100,flow=high,ts={ts}"),
        "duplicate_sequence": valid[5],
        "unknown_asset": format_frame("pump-99", 1, {"flow": 1.0}, ts),
        "unknown_key": format_frame("pump-02", 1, {"flow": 1.0, "rpm": 3.0}, ts),
        "bad_sequence": body_frame(f"pump-01,abc,flow=1.0,ts={ts}"),
    }
    stream = b""
    for i, frame in enumerate(valid):
        stream += b"$pump-01,9,fl" + frame if i == 8 else frame  # a cut frame glued to a good one
        if i == 5:
            stream += b"".join(bad.values())
    try:
        wait_until(reader.connected.is_set, timeout=10, what="port open")
        os.write(pty.master, stream)
        wait_until(lambda: reader.accepted + reader.rejected.total() >= 20 + len(bad) + 1,
                   timeout=20, what="all frames handled")  # fmt: skip
    finally:
        reader.stop()
        pty.close()
    stored = influx_client.read_readings(site="plant-a")
    assert sorted((r.time_ns, r.values["flow"]) for r in stored) == [
        ((ts + i) * 1_000_000, i + 0.5) for i in range(20)
    ]
    assert reader.rejected == dict.fromkeys(bad, 1) | {"truncated": 2}


def test_unplug_and_replug_at_the_same_path(influx_client: InfluxClient, tmp_path: Path) -> None:
    device_path = tmp_path / "ttyUSB0"
    first = SerialAsciiLine("first", block=True)
    first.start()
    device_path.symlink_to(first.url)
    sink = InfluxSink(influx_client, batch=1)
    failed_opens = 0

    def opener(settings: SerialLineSettings) -> serial.SerialBase:
        nonlocal failed_opens
        try:
            return open_port(settings)
        except (serial.SerialException, OSError):
            failed_opens += 1
            raise

    reader = AsciiFrameReader(
        AsciiPortSettings(url=str(device_path), site="plant-a", timestamps="device",
                          reopen_initial_s=0.1, reopen_max_s=1.0), sink, opener=opener)  # fmt: skip
    reader.start()
    wait_until(reader.connected.is_set, timeout=10, what="port open")
    for i in range(50):
        first.send(Sample("plant-a", "fan-01", T0 + i * 10**9, {"rpm": float(i)}))
    wait_until(lambda: reader.accepted == 50, timeout=10, what="frames before the unplug")
    first.close()  # the cable is pulled: the pty disappears
    device_path.unlink()
    # The port stays away while the reader notices and tries to reopen it a few times.
    wait_until(lambda: not reader.connected.is_set(), timeout=10, what="the unplug noticed")
    away_since = time.monotonic()
    wait_until(lambda: failed_opens >= 3, timeout=10, what="three failed reopens")
    second = SerialAsciiLine("second", block=True)
    second.start()
    device_path.symlink_to(second.url)
    away_for = time.monotonic() - away_since
    try:
        wait_until(reader.connected.is_set, timeout=10, what="port reopened")
        for i in range(50, 60):
            second.send(Sample("plant-a", "fan-01", T0 + i * 10**9, {"rpm": float(i)}))
        wait_until(lambda: reader.accepted == 60, timeout=10, what="frames after the replug")
    finally:
        reader.stop()
        second.close()
    assert len(reader.outages) == 1  # one outage, however many reopen attempts it took
    assert reader.outages[0] >= away_for  # the gap is reported with (at least) its length
    stored = influx_client.read_readings(site="plant-a")
    assert sorted(r.values["rpm"] for r in stored) == [float(i) for i in range(60)]
