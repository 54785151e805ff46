"""Register maps: the device_sims maps load, decode every type and order, and plan few reads."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from collector.serial.registers import (
    Register,
    RegisterMapError,
    decode_block,
    load_register_map,
    plan_blocks,
)

MAPS = Path(__file__).resolve().parents[3] / "device_sims" / "registers"


def words(fmt: str, value: float) -> list[int]:
    data = struct.pack(">" + fmt, value)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


@pytest.mark.parametrize(
    ("kind", "fmt", "raw"),
    [("int16", "h", -37), ("uint16", "H", 65000), ("int32", "i", -70000),
     ("uint32", "I", 4000000000), ("float32", "f", 101.25)],
)  # fmt: skip
def test_every_type_decodes_with_scale_and_offset(kind: str, fmt: str, raw: float) -> None:
    register = Register(0, "holding", kind, "x", scale=0.5, offset=10.0)
    assert register.decode(words(fmt, raw)) == pytest.approx(raw * 0.5 + 10.0)


def test_word_and_byte_order() -> None:
    high_first = words("f", 3.5)
    assert Register(0, "input", "float32", "x", word_order="little").decode(high_first[::-1]) == 3.5
    swapped = [int.from_bytes(w.to_bytes(2, "big")[::-1], "big") for w in high_first]
    assert Register(0, "input", "float32", "x", byte_order="little").decode(swapped) == 3.5


def test_sentinels_mean_no_value() -> None:
    assert Register(0, "holding", "int16", "x").decode([0x8000]) is None
    assert Register(0, "holding", "uint16", "x").decode([0xFFFF]) is None
    assert Register(0, "input", "float32", "x").decode(words("f", float("nan"))) is None


def test_simulator_maps_load_and_plan_one_read_per_table() -> None:
    registers = load_register_map(MAPS / "pump.yaml")
    blocks = plan_blocks(registers)
    assert [(b.function, b.start, b.count) for b in blocks] == [("holding", 0, 5), ("input", 0, 8)]
    holding = blocks[0]
    values = decode_block(holding, [2710, 2743, 3982, 0xFFDB, 619])
    assert values == pytest.approx(
        {"speed_rpm": 2710, "motor_current": 27.43, "voltage": 398.2, "bearing_temp": -3.7,
         "motor_temp": 61.9})  # fmt: skip


def test_invalid_map_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("registers:\n  - {address: 0, function: coil, type: int16, sensor: x}\n")
    with pytest.raises(RegisterMapError, match=r"registers\[0\]: function must be holding"):
        load_register_map(path)
