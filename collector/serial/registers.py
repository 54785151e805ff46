"""Modbus register maps (YAML) and decoding of register words into engineering values.

The file format is the one documented in docs/device_sims.md: ``byte_order``/``word_order`` at the
top (``big`` by default) and a list of registers with ``address`` (0-based protocol address),
``function`` (``holding`` or ``input``), ``type`` (int16, uint16, int32, uint32, float32),
``sensor``, ``unit``, ``scale`` and ``offset`` (value = raw × scale + offset), each of which may
override the byte and word order. A sentinel raw value (NaN, the signed minimum, the unsigned
maximum) means "no value" and decodes to None.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Function = Literal["holding", "input"]
_TYPES: dict[str, tuple[str, int]] = {
    "int16": ("h", 1), "uint16": ("H", 1), "int32": ("i", 2), "uint32": ("I", 2),
    "float32": ("f", 2),
}  # fmt: skip
_SENTINELS = {"int16": -0x8000, "uint16": 0xFFFF, "int32": -0x80000000, "uint32": 0xFFFFFFFF}
# Modbus limits a read to 125 registers; planning blocks below that keeps each poll one request.
MAX_BLOCK = 125


class RegisterMapError(ValueError):
    """A register map file is invalid; the message names the entry and the problem."""


class BadValueError(ValueError):
    """A register holds a value that is no reading: ``reason`` is ``non_finite`` (a float32
    infinity; NaN is the no-value sentinel) or ``out_of_range`` (outside its ``min``/``max``)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Register:
    """Where one sensor lives and how its value is encoded."""

    address: int
    function: Function
    type: str
    sensor: str
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    byte_order: str = "big"
    word_order: str = "big"
    min: float | None = None  # the valid range of the engineering value (optional)
    max: float | None = None

    @property
    def count(self) -> int:
        return _TYPES[self.type][1]

    def decode(self, words: list[int]) -> float | None:
        """The engineering value of this register's words, or None for the no-value sentinel."""
        chunks = [word.to_bytes(2, "big") for word in words]
        if self.byte_order == "little":
            chunks = [chunk[::-1] for chunk in chunks]
        if self.word_order == "little":
            chunks.reverse()
        (raw,) = struct.unpack(">" + _TYPES[self.type][0], b"".join(chunks))
        if self.type == "float32":
            if math.isnan(raw):
                return None
            if not math.isfinite(raw):
                raise BadValueError("non_finite", f"{self.sensor} ({self.where}) is {raw}")
        elif raw == _SENTINELS[self.type]:
            return None
        value = float(raw) * self.scale + self.offset
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            valid = f"[{self.min}, {self.max}]"
            raise BadValueError(
                "out_of_range", f"{self.sensor} ({self.where}) is {value!r}, outside {valid}"
            )
        return value

    @property
    def where(self) -> str:
        """``holding 3`` (its table and address), for messages."""
        return f"{self.function} {self.address}"


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: a function and a contiguous address range covering some registers."""

    function: Function
    start: int
    count: int
    registers: tuple[Register, ...]


def load_register_map(path: Path) -> list[Register]:
    """Load and validate a register map file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegisterMapError(f"cannot read register map {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("registers"), list):
        raise RegisterMapError(f"{path}: expected a mapping with a 'registers' list")
    defaults = {k: document.get(k, "big") for k in ("byte_order", "word_order")}
    return [_register(entry, defaults, f"{path}: registers[{i}]")
            for i, entry in enumerate(document["registers"])]  # fmt: skip


def _register(entry: Any, defaults: dict[str, str], where: str) -> Register:
    if not isinstance(entry, dict):
        raise RegisterMapError(f"{where}: expected a mapping")
    try:
        register = Register(
            address=int(entry["address"]),
            function=entry["function"],
            type=entry["type"],
            sensor=str(entry["sensor"]),
            unit=str(entry.get("unit", "")),
            scale=float(entry.get("scale", 1.0)),
            offset=float(entry.get("offset", 0.0)),
            byte_order=entry.get("byte_order", defaults["byte_order"]),
            word_order=entry.get("word_order", defaults["word_order"]),
            min=None if entry.get("min") is None else float(entry["min"]),
            max=None if entry.get("max") is None else float(entry["max"]),
        )
    except KeyError as exc:
        raise RegisterMapError(f"{where}: missing {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise RegisterMapError(f"{where}: {exc}") from exc
    if register.function not in ("holding", "input"):
        raise RegisterMapError(f"{where}: function must be holding or input")
    if register.type not in _TYPES:
        raise RegisterMapError(f"{where}: type must be one of {', '.join(_TYPES)}")
    if not 0 <= register.address <= 0xFFFF - register.count + 1:
        raise RegisterMapError(f"{where}: address {register.address} out of range")
    for order in (register.byte_order, register.word_order):
        if order not in ("big", "little"):
            raise RegisterMapError(f"{where}: byte/word order must be big or little")
    return register


def plan_blocks(registers: list[Register], max_gap: int = 8) -> list[Block]:
    """Group registers into few contiguous reads (bridging gaps up to ``max_gap`` registers)."""
    blocks: list[Block] = []
    for function in ("holding", "input"):
        chosen = sorted((r for r in registers if r.function == function), key=lambda r: r.address)
        current: list[Register] = []
        for register in chosen:
            if current:
                start = current[0].address
                end = max(r.address + r.count for r in current)
                new_end = max(end, register.address + register.count)
                if register.address - end > max_gap or new_end - start > MAX_BLOCK:
                    blocks.append(_block(function, current))
                    current = []
            current.append(register)
        if current:
            blocks.append(_block(function, current))
    return blocks


def _block(function: Function, registers: list[Register]) -> Block:
    start = registers[0].address
    end = max(r.address + r.count for r in registers)
    return Block(function, start, end - start, tuple(registers))


def decode_block(block: Block, words: list[int]) -> dict[str, float]:
    """Sensor values from a block's words; sentinels (no value) are left out, and a value
    that is no reading raises ``BadValueError``."""
    values: dict[str, float] = {}
    for register in block.registers:
        offset = register.address - block.start
        value = register.decode(words[offset : offset + register.count])
        if value is not None:
            values[register.sensor] = value
    return values
