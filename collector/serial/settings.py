"""Configuration of serial ports: one entry per port, ASCII frames or a Modbus RTU bus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator


class SerialLineSettings(BaseModel):
    """How to open the port (pyserial URL: /dev/ttyUSB0, a pty path, socket://, rfc2217://)."""

    url: str = Field(description="pyserial URL or device path")
    site: str = Field(description="site of every asset on this port")
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = Field(1, description="1, 1.5 or 2")
    timeout_s: float = Field(0.5, gt=0, description="read timeout; also the stop latency")
    reopen_initial_s: float = Field(0.2, gt=0, description="first wait before reopening")
    reopen_max_s: float = Field(5.0, gt=0, description="cap of the reopen backoff")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError(f"stopbits must be 1, 1.5 or 2, got {value}")
        return value


class AsciiPortSettings(SerialLineSettings):
    """A port carrying ASCII frames (docs/device_sims.md, "Serial frame format")."""

    protocol: Literal["ascii"] = "ascii"
    assets: dict[str, str] = Field(
        default_factory=dict,
        description="frame asset name -> equipmon asset; empty: take names as they come",
    )
    sensors: list[str] | None = Field(
        None, description="keys the devices may send; others are rejected as unknown_key"
    )
    timestamps: Literal["receipt", "device"] = Field(
        "receipt", description="receipt: stamp on arrival; device: use the frame's ts if present"
    )


class ModbusDeviceSettings(BaseModel):
    """One slave on a Modbus RTU bus."""

    unit_id: int = Field(ge=1, le=247)
    asset: str
    register_map: Path
    poll_interval_s: float = Field(1.0, gt=0)


class ModbusBusSettings(SerialLineSettings):
    """An RS-485 bus polled by Modbus RTU; devices are polled in turn."""

    protocol: Literal["modbus"] = "modbus"
    devices: list[ModbusDeviceSettings]
    retries: int = Field(2, ge=0, description="extra attempts per read after a CRC error/timeout")
    dead_after: int = Field(3, ge=1, description="failed polls in a row before a device is dead")
    dead_poll_interval_s: float = Field(
        10.0, gt=0, description="how often a dead device is probed (the others keep their rate)"
    )


SerialPortSettings = Annotated[
    AsciiPortSettings | ModbusBusSettings, Field(discriminator="protocol")
]
