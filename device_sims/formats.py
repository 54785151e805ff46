"""Wire formats: JSON (single and batch), InfluxDB line protocol, and serial ASCII frames.

These are the fixed contract documented in docs/device_sims.md; the collector and the API
decode exactly this.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from device_sims.engine import Sample
from device_sims.timefmt import NS_PER_MS, format_rfc3339_ns

MEASUREMENT = "telemetry"
MAX_FRAME_BYTES = 512
_PRECISION_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_LP_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def json_single(sample: Sample, quality: str | None = None) -> bytes:
    """One reading with an RFC 3339 (nanosecond) time."""
    body: dict[str, Any] = {
        "site": sample.site,
        "asset": sample.asset,
        "time": format_rfc3339_ns(sample.time_ns),
        "sensors": sample.sensors,
    }
    if quality is not None:
        body["quality"] = quality
    return _dumps(body)


def json_batch(site: str, samples: Iterable[Sample], precision: str = "ms") -> bytes:
    """A batch envelope: records inherit site and precision, times are integer epochs."""
    divisor = _PRECISION_NS[precision]
    readings = [
        {"asset": s.asset, "time": s.time_ns // divisor, "sensors": s.sensors} for s in samples
    ]
    return _dumps({"site": site, "precision": precision, "readings": readings})


@functools.lru_cache(maxsize=4096)
def lp_escape(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs and spaces).

    Cached: a fleet repeats a few dozen names, and escaping each field of every reading was a
    third of a line-protocol backfill's time."""
    return text.translate(_LP_TAG_ESCAPES)


def line_protocol(sample: Sample) -> str:
    """One line: measurement, tags asset and site (sorted), float fields, ns timestamp."""
    fields = ",".join(f"{lp_escape(k)}={float(v)!r}" for k, v in sample.sensors.items())
    return (
        f"{MEASUREMENT},asset={lp_escape(sample.asset)},site={lp_escape(sample.site)} "
        f"{fields} {sample.time_ns}"
    )


def line_protocol_batch(samples: Iterable[Sample]) -> bytes:
    """Several lines, newline-terminated, UTF-8."""
    return "".join(line_protocol(s) + "\n" for s in samples).encode()


def checksum(body: bytes) -> int:
    """XOR of all bytes (between '$' and '*' of a frame)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def serial_frame(
    asset: str,
    seq: int,
    sensors: Mapping[str, float],
    time_ns: int | None = None,
) -> bytes:
    """``$<asset>,<seq>,<key>=<value>,...[,ts=<epoch ms>]*<CS>\\r\\n``; sensors that do not fit
    in 512 bytes are left out (a real device's buffer would truncate too)."""
    parts = [asset, str(seq & 0xFFFFFFFF)]
    tail = f",ts={time_ns // NS_PER_MS}" if time_ns is not None else ""
    budget = MAX_FRAME_BYTES - len("$*XX\r\n") - len(tail) - len(",".join(parts))
    for key, value in sensors.items():
        item = f"{key}={float(value)!r}"
        if len(item) + 1 > budget:
            break
        budget -= len(item) + 1
        parts.append(item)
    body = (",".join(parts) + tail).encode("ascii")
    return b"$" + body + b"*" + f"{checksum(body):02X}".encode() + b"\r\n"


class FrameError(ValueError):
    """A serial line that is not a valid frame (bad shape or checksum)."""


def parse_serial_frame(line: bytes) -> tuple[str, int, dict[str, float], int | None]:
    """(asset, seq, sensors, ts in epoch ms or None) of one frame; raises FrameError."""
    text = line.rstrip(b"\r\n")
    if not text.startswith(b"$") or len(text) < 5 or text[-3:-2] != b"*":
        raise FrameError(f"not a frame: {line[:40]!r}")
    body, cs = text[1:-3], text[-2:]
    if f"{checksum(body):02X}".encode() != cs:
        raise FrameError(f"checksum mismatch: got {cs!r}, computed {checksum(body):02X}")
    fields = body.decode("ascii").split(",")
    if len(fields) < 2:
        raise FrameError("frame has no sequence number")
    sensors: dict[str, float] = {}
    ts: int | None = None
    for item in fields[2:]:
        key, sep, value = item.partition("=")
        if not sep:
            raise FrameError(f"item without '=': {item!r}")
        if key == "ts":
            ts = int(value)
        else:
            sensors[key] = float(value)
    return fields[0], int(fields[1]), sensors, ts
