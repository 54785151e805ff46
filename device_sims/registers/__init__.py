"""Modbus register maps: YAML files describing where each sensor lives and how it is encoded.

A map is loadable by path (``load_register_map``) so the collector's configuration can point at
the very file the simulator serves from. Engineering value = raw × scale + offset. Registers
are big-endian within the word unless ``byte_order: little``; 32-bit values put the high word
first unless ``word_order: little``. A sensor with no current value (sensor dropout) reads as
a sentinel: NaN for float32, the type's minimum for signed and maximum for unsigned integers.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAPS_DIR = Path(__file__).parent
TYPES = {"int16": ("h", 1), "uint16": ("H", 1), "int32": ("i", 2), "uint32": ("I", 2),
         "float32": ("f", 2)}  # fmt: skip
FUNCTIONS = ("holding", "input")
_SENTINELS = {"int16": -0x8000, "uint16": 0xFFFF, "int32": -0x80000000, "uint32": 0xFFFFFFFF}


@dataclass(frozen=True)
class Register:
    """One value in the map: address, table, type, scaling and the sensor it carries."""

    address: int
    function: str
    type: str
    sensor: str
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    byte_order: str = "big"
    word_order: str = "big"

    @property
    def count(self) -> int:
        """Registers occupied (1 or 2)."""
        return TYPES[self.type][1]

    def encode(self, value: float | None) -> list[int]:
        """Register words for an engineering value (None: the sentinel)."""
        code = TYPES[self.type][0]
        if self.type == "float32":
            raw: float | int = math.nan if value is None else (value - self.offset) / self.scale
        elif value is None:
            raw = _SENTINELS[self.type]
        else:
            lo, hi = _int_range(self.type)
            raw = max(lo + 1, min(hi - 1, round((value - self.offset) / self.scale)))
        data = struct.pack(f">{code}", raw)
        words = [data[i : i + 2] for i in range(0, len(data), 2)]
        if self.word_order == "little":
            words.reverse()
        if self.byte_order == "little":
            words = [w[::-1] for w in words]
        return [int.from_bytes(w, "big") for w in words]

    def decode(self, words: list[int]) -> float | None:
        """Engineering value from register words (None for the sentinel)."""
        chunks = [w.to_bytes(2, "big") for w in words[: self.count]]
        if self.byte_order == "little":
            chunks = [c[::-1] for c in chunks]
        if self.word_order == "little":
            chunks.reverse()
        (raw,) = struct.unpack(f">{TYPES[self.type][0]}", b"".join(chunks))
        if self.type == "float32":
            return None if math.isnan(raw) else raw * self.scale + self.offset
        if raw == _SENTINELS[self.type]:
            return None
        return float(raw) * self.scale + self.offset


def _int_range(kind: str) -> tuple[int, int]:
    bits = 16 if kind.endswith("16") else 32
    if kind.startswith("u"):
        return -1, 2**bits - 1  # sentinel is the maximum: keep values strictly below it
    return -(2 ** (bits - 1)), 2 ** (bits - 1)


@dataclass(frozen=True)
class RegisterMap:
    """All registers of one device type."""

    machine: str
    registers: tuple[Register, ...]

    def table(self, function: str) -> tuple[int, int]:
        """(first address, number of registers) spanned in the holding or input table."""
        regs = [r for r in self.registers if r.function == function]
        if not regs:
            return 0, 0
        first = min(r.address for r in regs)
        return first, max(r.address + r.count for r in regs) - first

    def encode(self, values: Mapping[str, float]) -> dict[str, list[int]]:
        """The full holding and input tables for a set of sensor values."""
        tables: dict[str, list[int]] = {}
        for function in FUNCTIONS:
            first, size = self.table(function)
            tables[function] = [0] * size
        for reg in self.registers:
            first = self.table(reg.function)[0]
            start = reg.address - first
            tables[reg.function][start : start + reg.count] = reg.encode(values.get(reg.sensor))
        return tables


def parse_register_map(doc: Mapping[str, Any], source: str = "<map>") -> RegisterMap:
    """Validate a map document; errors name the entry and the field."""
    defaults = {k: doc[k] for k in ("byte_order", "word_order") if k in doc}
    registers = []
    used: dict[tuple[str, int], str] = {}
    for i, entry in enumerate(doc.get("registers") or []):
        where = f"{source}: registers[{i}]"
        fields = {**defaults, **entry}
        unknown = set(fields) - set(Register.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        reg = Register(**fields)
        if reg.type not in TYPES:
            raise ValueError(f"{where}: type must be one of {', '.join(TYPES)}")
        if reg.function not in FUNCTIONS:
            raise ValueError(f"{where}: function must be holding or input")
        if reg.byte_order not in ("big", "little") or reg.word_order not in ("big", "little"):
            raise ValueError(f"{where}: byte_order and word_order are big or little")
        if not 0 <= reg.address <= 0xFFFF - reg.count or reg.scale == 0:
            raise ValueError(f"{where}: address out of range or scale is 0")
        for a in range(reg.address, reg.address + reg.count):
            if (reg.function, a) in used:
                raise ValueError(f"{where}: overlaps {used[(reg.function, a)]} at {a}")
            used[(reg.function, a)] = reg.sensor
        registers.append(reg)
    if not registers:
        raise ValueError(f"{source}: no registers")
    return RegisterMap(str(doc.get("machine", "")), tuple(registers))


def load_register_map(path: str | Path) -> RegisterMap:
    """Load a register map YAML file."""
    path = Path(path)
    return parse_register_map(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def builtin_map_path(machine_type: str) -> Path:
    """Path of the map shipped for a machine type."""
    return MAPS_DIR / f"{machine_type}.yaml"


def builtin_map(machine_type: str) -> RegisterMap:
    """The map shipped for a machine type."""
    return load_register_map(builtin_map_path(machine_type))
