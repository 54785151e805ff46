"""The ASCII serial frame: ``$<asset>,<seq>,<key>=<value>,...[,ts=<epoch ms>]*<CS>\\r\\n``.

The same format device_sims emits (docs/device_sims.md, "Serial frame format"): ``<CS>`` is two
uppercase hex digits, the XOR of every byte strictly between ``$`` and ``*``; ``<seq>`` a decimal
uint32 per asset that wraps to 0; ``ts`` (optional) epoch milliseconds from the device's clock.
Every rejection raises :class:`FrameError` with a reason code used for metrics.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_FRAME_BYTES = 512
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSET = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_PRINTABLE = frozenset(range(0x20, 0x7F))

# Reason codes, in the order the parser checks them.
REASONS = (
    "overlong",  # longer than MAX_FRAME_BYTES: a lost line end glued frames together
    "binary_noise",  # bytes outside printable ASCII: baud mismatch, noise, wrong protocol
    "truncated",  # no '$' start or no '*CS' end: the frame was cut
    "bad_checksum",  # the checksum does not match: bits flipped on the wire
    "bad_field",  # a field is not key=value, a bad key, a value that is not a finite number
    "bad_asset",  # the asset name is malformed
    "bad_sequence",  # the sequence number is not a uint32
    "duplicate_sequence",  # the same frame again (an echo or a repeating device)
    "unknown_asset",  # no mapping for this asset on this port
    "unknown_key",  # a key the port's configuration does not expect
)


class FrameError(ValueError):
    """A rejected frame; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(slots=True)
class Frame:
    """A checksummed, decoded frame."""

    asset: str
    seq: int
    values: dict[str, float]
    device_time_ms: int | None


def checksum(body: bytes) -> int:
    """XOR of all bytes (NMEA style)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def parse_frame(raw: bytes) -> Frame:
    """Parse one line (with or without its line end) into a Frame, or raise FrameError."""
    if len(raw) > MAX_FRAME_BYTES:
        raise FrameError("overlong", f"frame of {len(raw)} bytes exceeds {MAX_FRAME_BYTES}")
    line = raw.rstrip(b"\r\n")
    if any(byte not in _PRINTABLE for byte in line):
        raise FrameError("binary_noise", "frame holds bytes outside printable ASCII")
    star = line.rfind(b"*")
    if not line.startswith(b"$") or star < 0 or len(line) - star != 3:
        raise FrameError("truncated", "frame lacks the '$' start or the '*CS' checksum")
    body, sent = line[1:star], line[star + 1 :]
    try:
        expected = int(sent, 16)
    except ValueError:
        raise FrameError("truncated", f"checksum {sent!r} is not two hex digits") from None
    if checksum(body) != expected:
        raise FrameError("bad_checksum", f"checksum {expected:02X} != {checksum(body):02X}")
    parts = body.decode("ascii").split(",")
    if len(parts) < 3:
        raise FrameError("bad_field", "frame has no key=value field")
    asset, seq_text, fields = parts[0], parts[1], parts[2:]
    if not _ASSET.fullmatch(asset):
        raise FrameError("bad_asset", f"asset {asset!r} is malformed")
    if not seq_text.isdigit() or int(seq_text) > 0xFFFFFFFF:
        raise FrameError("bad_sequence", f"sequence {seq_text!r} is not a uint32")
    values, device_time_ms = _parse_fields(fields)
    return Frame(asset, int(seq_text), values, device_time_ms)


def _parse_fields(fields: list[str]) -> tuple[dict[str, float], int | None]:
    values: dict[str, float] = {}
    device_time_ms: int | None = None
    for field in fields:
        key, sep, text = field.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise FrameError("bad_field", f"field {field!r} is not key=value")
        if key == "ts":
            if not text.isdigit():
                raise FrameError("bad_field", f"ts {text!r} is not epoch milliseconds")
            device_time_ms = int(text)
            continue
        try:
            number = float(text)
        except ValueError:
            raise FrameError("bad_field", f"value {text!r} of {key} is not a number") from None
        if not math.isfinite(number) or "_" in text:
            raise FrameError("bad_field", f"value {text!r} of {key} is not a finite decimal")
        values[key] = number
    if not values:
        raise FrameError("bad_field", "frame carries no sensor value")
    return values, device_time_ms


def format_frame(asset: str, seq: int, values: dict[str, float], ts_ms: int | None = None) -> bytes:
    """Build a frame (used by tests and tools; device_sims has its own writer)."""
    fields = [f"{k}={v!r}" for k, v in values.items()]
    if ts_ms is not None:
        fields.append(f"ts={ts_ms}")
    body = ",".join([asset, str(seq), *fields]).encode("ascii")
    return b"$" + body + f"*{checksum(body):02X}\r\n".encode()
