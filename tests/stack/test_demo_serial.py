"""The collector's serial section is derived from the demo scenario and the simulators' ports."""

from __future__ import annotations

import json
from pathlib import Path

from stack.demo_serial import serial_section
from stack.supervisor import DEMO_SCENARIO, ROOT


def test_demo_lines_map_to_ascii_and_modbus_ports(tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    ports.write_text(json.dumps({"ascii-a": "/dev/pts/7", "rs485-a": "/dev/pts/9"}))
    section = serial_section(DEMO_SCENARIO, ports, ROOT / "device_sims" / "registers")
    ascii_port, modbus_bus = section
    assert ascii_port == {"url": "/dev/pts/7", "site": "plant-a", "baudrate": 19200,
                          "protocol": "ascii", "timestamps": "device"}  # fmt: skip
    assert modbus_bus["protocol"] == "modbus"
    assert [(d["asset"], d["unit_id"]) for d in modbus_bus["devices"]] == [
        ("comp-02", 1), ("pump-m01", 2), ("pump-m02", 3)]  # fmt: skip
    assert all(Path(d["register_map"]).exists() for d in modbus_bus["devices"])


def test_lines_the_simulators_did_not_open_are_left_out(tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    ports.write_text(json.dumps({"control": "http://127.0.0.1:1"}))
    assert serial_section(DEMO_SCENARIO, ports, ROOT / "device_sims" / "registers") == []
