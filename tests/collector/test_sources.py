"""Every input has one shape: serial ASCII ports and Modbus RTU buses go through the same intake,
spool, dead letters, metrics and health as MQTT (issue 16 point 6).

Real collectors on real pseudo-terminals served by device_sims (a pty per ASCII port, a pty
relay to pymodbus' serial server for a Modbus bus), the test's Mosquitto and InfluxDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.frames import checksum, format_frame
from collector.service import CollectorService
from device_sims.engine import Sample
from device_sims.registers import builtin_map, builtin_map_path
from device_sims.transports import modbus_rtu
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.pty import Pty, PtyRelay
from device_sims.transports.serial_ascii import SerialAsciiLine
from telemetry.influx.client import InfluxClient
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, count_and_sum, scrape, wait_for

TS_MS = T0 // 1_000_000


def _health(service: CollectorService) -> tuple[int, dict[str, Any]]:
    """/healthz's status code and document."""
    assert service.http is not None
    url = f"http://127.0.0.1:{service.http.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _port_open(service: CollectorService, name: str) -> bool:
    """Whether the source's port is open (pyserial flushes a port's input when it opens it, so
    a test writes only once it is)."""
    return bool(_health(service)[1]["sources"][name]["port_open"])


def _metrics(service: CollectorService) -> dict[str, float]:
    assert service.http is not None
    return scrape(service.http.port)


def _frame(body: str) -> bytes:
    return b"$" + body.encode() + f"*{checksum(body.encode()):02X}\r\n".encode()


def test_serial_readings_and_bad_frames_take_the_mqtt_path(
    make_collector: CollectorFactory, influx_client: InfluxClient
) -> None:
    pty = Pty()
    good = [format_frame("pump-01", i, {"flow": i + 0.5}, TS_MS + i) for i in range(30)]
    bad = [  # (reason, line) for every kind of bad frame
        ("bad_checksum", good[3].replace(b"flow=3.5", b"flow=3.6")),
        ("truncated", b"hello, this is not a frame\r\n"),
        ("binary_noise", b"\x00\x17\xfe\xff\x80garbage\r\n"),
        ("bad_field", _frame(f"pump-01,100,flow=high,ts={TS_MS}")),
        ("time_out_of_range", format_frame("pump-02", 1, {"flow": 1.0}, TS_MS * 1000)),
    ]
    service = make_collector(
        serial=[{"protocol": "ascii", "url": pty.path, "site": "plant-a", "timestamps": "device"}],
        log={"dead_letter_log_interval_s": 60.0},
    )
    name = f"serial:{pty.path}"
    try:
        wait_for(lambda: _port_open(service, name), 10, "port open")
        os.write(pty.master, b"".join(good[:15]) + b"".join(line for _, line in bad))
        os.write(pty.master, b"".join(good[15:]))
        wait_for(lambda: count_and_sum(influx_client, "flow")[0] == len(good), 30, "readings")
        wait_for(lambda: len(service.spool.dead_letters(100)) == len(bad), 10, "dead letters")
        metrics = _metrics(service)
    finally:
        pty.close()
    assert count_and_sum(influx_client, "flow") == (30, sum(i + 0.5 for i in range(30)))

    # Dead letters are stored as MQTT's are: reason, detail, the line as it came, the source
    # named where MQTT names the topic.
    letters = list(reversed(service.spool.dead_letters(100)))
    assert [(d.reason, d.topic, d.payload) for d in letters] == [
        (reason, name, line) for reason, line in bad
    ]
    assert all(d.detail and d.payload_size == len(d.payload) for d in letters)

    # /metrics: the source's readings, frames and dead letters, beside the process totals.
    assert metrics[f'equipmon_collector_readings_total{{source="{name}"}}'] == 30
    assert metrics[f'equipmon_collector_source_messages_total{{source="{name}"}}'] == 30 + len(bad)
    for reason, _ in bad:
        key = f'equipmon_collector_source_dead_letters_total{{reason="{reason}",source="{name}"}}'
        assert metrics[key] == 1
        assert metrics[f'equipmon_collector_dead_letters_total{{reason="{reason}"}}'] == 1
        assert metrics[f'equipmon_collector_lifetime_total{{name="dead_letters:{reason}"}}'] == 1
    assert metrics["equipmon_collector_readings_spooled_total"] == 30
    assert metrics['equipmon_collector_readings_total{source="mqtt"}'] == 0
    assert metrics["equipmon_collector_messages_acknowledged_total"] == 0  # MQTT's only
    # Serial frames are not MQTT deliveries: they do not date redelivery keys.
    assert metrics.get('equipmon_collector_lifetime_total{name="mqtt_messages"}', 0) == 0


def test_serial_source_in_healthz_and_metrics_while_running(
    make_collector: CollectorFactory,
) -> None:
    line = SerialAsciiLine("healthz", block=True)
    line.start()
    service = make_collector(
        serial=[{"protocol": "ascii", "url": line.url, "site": "plant-a", "timestamps": "device"}]
    )
    name = f"serial:{line.url}"
    try:
        wait_for(lambda: _port_open(service, name), 10, "port open")  # opening flushes input
        for i in range(20):
            line.send(Sample("plant-a", "fan-01", T0 + i * 10**9, {"rpm": float(i)}))
        readings = f'equipmon_collector_readings_total{{source="{name}"}}'
        wait_for(lambda: _metrics(service).get(readings) == 20, 20, "20 readings in /metrics")
        status, health = _health(service)
        metrics = _metrics(service)
    finally:
        line.close()
    assert status == 200
    report = health["sources"][name]
    assert report["kind"] == "ascii"
    assert report["healthy"] is True
    assert report["port_open"] is True
    assert report["readings"] == 20
    assert report["messages"] == 20
    assert report["dead_letters"] == 0
    assert report["last_input_age_s"] is not None
    assert health["sources"]["mqtt"]["healthy"] is True  # MQTT has the same entry
    assert health["sources"]["mqtt"]["connected"] is True
    assert metrics[f'equipmon_collector_source_up{{kind="ascii",source="{name}"}}'] == 1
    assert metrics['equipmon_collector_source_up{kind="mqtt",source="mqtt"}'] == 1
    assert f'equipmon_collector_source_last_input_age_seconds{{source="{name}"}}' in metrics


def test_a_port_that_disappears_is_unhealthy_until_it_comes_back(
    make_collector: CollectorFactory, influx_client: InfluxClient, tmp_path: Path
) -> None:
    device_path = tmp_path / "ttyUSB0"
    first = SerialAsciiLine("first", block=True)
    first.start()
    device_path.symlink_to(first.url)
    port = {"protocol": "ascii", "url": str(device_path), "site": "plant-a",
            "timestamps": "device", "reopen_initial_s": 0.1, "reopen_max_s": 0.5}  # fmt: skip
    service = make_collector(serial=[port])
    name = f"serial:{device_path}"
    up = f'equipmon_collector_source_up{{kind="ascii",source="{name}"}}'
    unavailable = (
        f'equipmon_collector_source_errors_total{{error="port_unavailable",source="{name}"}}'
    )
    second: SerialAsciiLine | None = None
    try:
        wait_for(lambda: _port_open(service, name), 10, "port open")
        for i in range(10):
            first.send(Sample("plant-a", "fan-01", T0 + i * 10**9, {"rpm": float(i)}))
        wait_for(lambda: count_and_sum(influx_client, "rpm")[0] == 10, 20, "frames before")
        assert _health(service)[0] == 200
        first.close()  # the cable is pulled: the pty disappears
        device_path.unlink()
        wait_for(lambda: _health(service)[0] == 503, 10, "/healthz unhealthy")
        _, health = _health(service)
        assert health["sources"][name]["healthy"] is False
        assert health["sources"][name]["port_open"] is False
        assert any(p.startswith(f"{name}: cannot open") for p in health["problems"])
        metrics = _metrics(service)
        assert metrics[up] == 0
        assert metrics[unavailable] >= 1
        assert (
            metrics[f'equipmon_collector_source_errors_total{{error="port_lost",source="{name}"}}']
            == 1
        )

        second = SerialAsciiLine("second", block=True)
        second.start()
        device_path.symlink_to(second.url)
        wait_for(lambda: _health(service)[0] == 200, 10, "/healthz healthy again")
        assert _port_open(service, name)
        assert _metrics(service)[up] == 1
        for i in range(10, 20):
            second.send(Sample("plant-a", "fan-01", T0 + i * 10**9, {"rpm": float(i)}))
        wait_for(lambda: count_and_sum(influx_client, "rpm")[0] == 20, 20, "frames after")
    finally:
        first.close()
        if second is not None:
            second.close()
    assert count_and_sum(influx_client, "rpm") == (20, float(sum(range(20))))


class SwitchableRelay(PtyRelay):
    """A bus whose devices can be silenced (their requests never reach them) and whose next
    answers can be garbled (the CRC's last byte flipped), as a loose RS-485 cable would."""

    silent: ClassVar[set[int]] = set()
    garble_next: ClassVar[int] = 0
    garbled: ClassVar[list[bytes]] = []

    def _write_all(self, fd: int, data: bytes) -> None:
        if fd == self.device_side.master and data[:1] and data[0] in self.silent:
            return
        if fd == self.client_side.master and SwitchableRelay.garble_next > 0:
            SwitchableRelay.garble_next -= 1
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
            SwitchableRelay.garbled.append(data)
        super()._write_all(fd, data)


@pytest.fixture
def pump_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModbusRtuLine]:
    """A Modbus RTU bus with one pump (unit 1) behind a switchable relay."""
    SwitchableRelay.silent, SwitchableRelay.garble_next, SwitchableRelay.garbled = set(), 0, []
    monkeypatch.setattr(modbus_rtu, "PtyRelay", SwitchableRelay)
    line = ModbusRtuLine("rs485-sources", {"pump-m01": (1, builtin_map("pump"))}, baudrate=9600)
    line.start()
    line.send(
        Sample("plant-a", "pump-m01", T0, {r.sensor: 10.0 for r in builtin_map("pump").registers})
    )
    line.tick(T0)
    yield line
    line.close()


def _bus(url: str, register_map: Path, retries: int = 0) -> dict[str, Any]:
    return {"protocol": "modbus", "url": url, "site": "plant-a", "baudrate": 9600,
            "timeout_s": 0.2, "retries": retries, "dead_after": 2, "dead_poll_interval_s": 0.3,
            "devices": [{"unit_id": 1, "asset": "pump-m01", "register_map": str(register_map),
                         "poll_interval_s": 0.1}]}  # fmt: skip


def test_a_modbus_device_that_stops_answering_is_unhealthy_until_it_answers(
    make_collector: CollectorFactory, pump_bus: ModbusRtuLine
) -> None:
    service = make_collector(serial=[_bus(pump_bus.url, builtin_map_path("pump"))])
    name = f"modbus:{pump_bus.url}"
    readings = f'equipmon_collector_readings_total{{source="{name}"}}'
    up = f'equipmon_collector_source_up{{kind="modbus",source="{name}"}}'
    wait_for(lambda: _metrics(service).get(readings, 0) >= 3, 20, "Modbus readings in /metrics")
    status, health = _health(service)
    assert status == 200
    assert health["sources"][name]["devices"]["pump-m01"]["answering"] is True
    assert health["sources"][name]["port_open"] is True

    SwitchableRelay.silent.add(1)  # the pump stops answering
    wait_for(lambda: _health(service)[0] == 503, 10, "/healthz unhealthy")
    status, health = _health(service)
    assert health["sources"][name]["devices"]["pump-m01"]["answering"] is False
    assert f"{name}: unit 1 (pump-m01) is not answering" in health["problems"]
    metrics = _metrics(service)
    assert metrics[up] == 0
    assert (
        metrics[f'equipmon_collector_source_errors_total{{error="no_response",source="{name}"}}']
        >= 2
    )

    SwitchableRelay.silent.clear()  # it answers again
    wait_for(lambda: _health(service)[0] == 200, 10, "/healthz healthy again")
    before = _metrics(service)[readings]
    wait_for(lambda: _metrics(service)[readings] > before, 10, "readings again")
    assert _metrics(service)[up] == 1


def test_modbus_bad_crc_and_out_of_range_values_are_dead_letters(
    make_collector: CollectorFactory, pump_bus: ModbusRtuLine, tmp_path: Path
) -> None:
    # The collector's copy of the pump's map says a flow above 100 m3/h is no reading.
    document = yaml.safe_load(builtin_map_path("pump").read_text())
    for register in document["registers"]:
        if register["sensor"] == "flow":
            register["max"] = 100.0
    register_map = tmp_path / "pump.yaml"
    register_map.write_text(yaml.safe_dump(document))
    # One retry: two garbled answers in a row are one failed poll, and the pump stays alive.
    service = make_collector(serial=[_bus(pump_bus.url, register_map, retries=1)])
    name = f"modbus:{pump_bus.url}"
    readings = f'equipmon_collector_readings_total{{source="{name}"}}'
    wait_for(lambda: _metrics(service).get(readings, 0) >= 1, 20, "Modbus readings")

    SwitchableRelay.garble_next = 2  # two answers with a bad CRC
    wait_for(lambda: len(service.spool.dead_letters(10)) >= 2, 10, "bad CRC dead letters")
    values = {r.sensor: 10.0 for r in builtin_map("pump").registers}
    pump_bus.send(Sample("plant-a", "pump-m01", T0, values | {"flow": 150.0}))
    wait_for(lambda: any(d.reason == "out_of_range" for d in service.spool.dead_letters(10)),
             10, "the out-of-range dead letter")  # fmt: skip
    pump_bus.send(Sample("plant-a", "pump-m01", T0, values))  # back in range

    letters = list(reversed(service.spool.dead_letters(100)))
    crc = [d for d in letters if d.reason == "bad_crc"]
    assert len(crc) == 2
    assert [d.payload for d in crc] == SwitchableRelay.garbled  # the bytes as they came
    assert all(d.topic == name and "unit 1 (pump-m01)" in d.detail for d in crc)
    out_of_range = next(d for d in letters if d.reason == "out_of_range")
    assert out_of_range.topic == name
    assert "flow" in out_of_range.detail
    assert "150" in out_of_range.detail
    # The poll's answers as they came: unit 1's holding registers (3), then its inputs (4).
    assert out_of_range.payload[:2] == b"\x01\x03"
    assert b"\x01\x04" in out_of_range.payload
    metrics = _metrics(service)
    assert (
        metrics[f'equipmon_collector_source_dead_letters_total{{reason="bad_crc",source="{name}"}}']
        == 2
    )
    assert (
        metrics[
            f'equipmon_collector_source_dead_letters_total{{reason="out_of_range",source="{name}"}}'
        ]
        >= 1
    )
    health = _health(service)[1]["sources"][name]
    assert health["devices"]["pump-m01"]["answering"] is True  # bad input, not a dead device

    # The dead-letters command shows binary input in hex as well.
    config = tmp_path / "inspect.yaml"
    config.write_text(yaml.safe_dump({"data_dir": service.settings.data_dir}))
    out = subprocess.run(
        [sys.executable, "-m", "collector", "dead-letters", "--config", str(config),
         "--limit", "10000"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.splitlines()  # fmt: skip
    assert json.loads(out[0])["dead_letters_by_reason"]["bad_crc"] == 2
    shown = [json.loads(line) for line in out[1:] if json.loads(line)["reason"] == "bad_crc"]
    assert [bytes.fromhex(s["payload_hex"]) for s in reversed(shown)] == SwitchableRelay.garbled
    assert {s["topic"] for s in shown} == {name}


def test_a_serial_reader_that_dies_is_restarted_under_supervision(
    make_collector: CollectorFactory, influx_client: InfluxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pty = Pty()
    original = AsciiFrameReader.handle_line

    def handle_line(self: AsciiFrameReader, line: bytes) -> None:
        if b"poison" in line:
            raise RuntimeError("injected: a bug in the frame path")
        original(self, line)

    monkeypatch.setattr(AsciiFrameReader, "handle_line", handle_line)
    service = make_collector(
        serial=[{"protocol": "ascii", "url": pty.path, "site": "plant-a", "timestamps": "device"}],
        supervise={"restart_min_s": 1.0, "restart_max_s": 1.0, "healthy_after_s": 1.0},
    )
    name = f"serial:{pty.path}"
    thread = f'equipmon_collector_thread_restarts_total{{thread="serial-{pty.path}"}}'
    try:
        wait_for(lambda: _port_open(service, name), 10, "port open")
        os.write(pty.master, format_frame("fan-01", 0, {"rpm": 1.0}, TS_MS))
        wait_for(lambda: count_and_sum(influx_client, "rpm")[0] == 1, 20, "the first frame")
        os.write(pty.master, b"$poison\r\n")
        wait_for(lambda: _health(service)[0] == 503, 10, "/healthz unhealthy while down")
        problems = _health(service)[1]["problems"]
        assert any(p.startswith(f"thread serial-{pty.path} down") for p in problems), problems
        wait_for(lambda: _health(service)[0] == 200, 20, "/healthz healthy after the restart")
        assert _metrics(service)[thread] == 1
        os.write(pty.master, format_frame("fan-01", 1, {"rpm": 2.0}, TS_MS + 1))
        wait_for(lambda: count_and_sum(influx_client, "rpm")[0] == 2, 20, "a frame after it")
    finally:
        pty.close()
    assert count_and_sum(influx_client, "rpm") == (2, 3.0)
