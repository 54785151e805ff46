"""Collector serial configuration for a simulated plant: which pty serves which assets.

The simulators write the pty paths of their serial lines to a ports file when they start; the
scenario YAML says which assets sit on which line (and their Modbus unit ids). From both, this
module writes the collector's ``serial`` section. It reads files only: the stack imports
nothing of the simulators or the collector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def _expand(entry: dict[str, Any]) -> list[tuple[str, int]]:
    """Asset names and Modbus unit ids of one scenario entry (``count`` templates expanded)."""
    count = int(entry.get("count", 1))
    unit = int(entry.get("unit", 1))
    if count == 1 and "{" not in entry["name"]:
        return [(entry["name"], unit)]
    return [(entry["name"].format(n=j + 1), unit + j) for j in range(count)]


def serial_section(scenario: Path, ports_file: Path, registers_dir: Path) -> list[dict[str, Any]]:
    """The collector's ``serial`` entries for every serial line the scenario defines."""
    document = yaml.safe_load(scenario.read_text())
    ports: dict[str, str] = json.loads(ports_file.read_text())
    lines: dict[str, dict[str, Any]] = document.get("serial_lines") or {}
    entries: list[dict[str, Any]] = []
    for line_id, line in lines.items():
        if line_id not in ports:
            continue
        assets = [a for a in document.get("assets", []) if a.get("line") == line_id]
        site = assets[0]["site"] if assets else "default"
        common = {"url": ports[line_id], "site": site,
                  "baudrate": int(line.get("baudrate", 19200))}  # fmt: skip
        if line.get("protocol") == "modbus":
            devices = [
                {"unit_id": unit, "asset": name, "poll_interval_s": 1.0,
                 "register_map": str(registers_dir / f"{asset['type']}.yaml")}
                for asset in assets for name, unit in _expand(asset)
            ]  # fmt: skip
            entries.append({**common, "protocol": "modbus", "devices": devices})
        else:
            timestamps = "device" if line.get("clock", True) else "receipt"
            entries.append({**common, "protocol": "ascii", "timestamps": timestamps})
    return entries


def write_collector_config(
    path: Path, scenario: Path, ports_file: Path, registers_dir: Path
) -> Path:
    """Write a collector config file holding the serial section; return its path."""
    path.write_text(yaml.safe_dump({"serial": serial_section(scenario, ports_file, registers_dir)}))
    return path
