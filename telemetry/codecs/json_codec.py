"""JSON payloads: one reading, or a batch envelope whose records inherit site and precision.

Schema (documented in the README):

    {"site": "plant-a", "asset": "pump-01", "time": "2026-11-27T07:00:00.123456789Z",
     "sensors": {"vibration_rms": 2.31}, "quality": "good"}

    {"site": "plant-a", "precision": "ms",
     "readings": [{"asset": "pump-01", "time": 1764226800123, "sensors": {...}}, ...]}

``time`` is RFC 3339 or an epoch number in ``precision`` units (default ns); when absent the
receipt time is used. A top-level JSON array is a batch too. Unknown keys are ignored so that
newer gateways stay readable by older collectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from telemetry.codecs.text import payload_text
from telemetry.errors import DecodeError, ValidationError
from telemetry.reading import DEFAULT_LIMITS, Reading, ValidationLimits, build_reading, now_ns
from telemetry.timeutil import parse_rfc3339_ns, precision_factor


def _reject_constant(name: str) -> float:
    # The scanner does not say where the constant was; "payload" is honest.
    raise DecodeError(
        f"{name} is not a valid sensor value; values must be finite numbers",
        where="payload",
        reason="non_finite",
    )


def _bounded_int(text: str) -> int | float:
    # Python refuses to convert integers of more than 4,300 digits (a CPU guard) with a bare
    # ValueError. Such a number is far outside every range a value or a time may take, so it
    # becomes ±inf, which validation rejects as it does 1e400 (non_finite, time_out_of_range).
    try:
        return int(text)
    except ValueError:
        return -math.inf if text.startswith("-") else math.inf


# One decoder for every call: ``json.loads`` with a hook builds a new JSONDecoder (and its scanner)
# on each call, which costs about as much as decoding a small payload.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# Only for documents holding such a huge integer: a parse_int hook costs every integer a call.
_HUGE_INT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_bounded_int)


def _loads(payload: bytes | str) -> Any:
    text = payload_text(payload)
    try:
        if text.startswith("\ufeff"):  # as json.loads does for str input
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        try:
            return _DECODER.decode(text)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer literal over the digit limit (the only other cause)
            return _HUGE_INT_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"invalid JSON: {exc.msg}",
            where=f"line {exc.lineno}, column {exc.colno}",
            reason="invalid_json",
        ) from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply", where="payload", reason="invalid_json") from exc


def _record_time(record: Mapping[str, Any], factor: int, where: str, default_ns: int | None) -> int:
    raw = record.get("time")
    if raw is None:
        if default_ns is None:
            raise DecodeError("time is missing", where=f"{where}time", reason="missing_field")
        return default_ns
    if isinstance(raw, str):
        return parse_rfc3339_ns(raw, where=f"{where}time")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValidationError(
            f"time must be an RFC 3339 string or an epoch number, got {type(raw).__name__}",
            where=f"{where}time",
            reason="wrong_type",
        )
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValidationError(
                "time must be a finite number", where=f"{where}time", reason="time_out_of_range"
            )
        scaled = raw * factor
        # 1e300 s is a finite float whose nanoseconds overflow to inf (round() would raise).
        if not math.isfinite(scaled):
            raise ValidationError(
                f"time {raw!r} is out of range", where=f"{where}time", reason="time_out_of_range"
            )
        return round(scaled)
    return raw * factor


def _decode_record(
    record: object,
    *,
    where: str,
    envelope: Mapping[str, Any],
    site: str | None,
    asset: str | None,
    default_time_ns: int | None,
    limits: ValidationLimits,
    now: int,
) -> Reading:
    if not isinstance(record, dict):
        raise ValidationError(
            f"a reading must be a JSON object, got {type(record).__name__}",
            where=where or "payload",
            reason="wrong_type",
        )
    prefix = f"{where}." if where else ""
    record_site = record.get("site", envelope.get("site", site))
    if record_site is None:
        raise DecodeError("site is missing", where=f"{prefix}site", reason="missing_field")
    if site is not None and record_site != site:
        raise ValidationError(
            f"site {record_site!r} does not match the source's site {site!r}",
            where=f"{prefix}site",
            reason="site_mismatch",
        )
    record_asset = record.get("asset", asset)
    if record_asset is None:
        raise DecodeError("asset is missing", where=f"{prefix}asset", reason="missing_field")
    if "sensors" not in record:
        raise DecodeError("sensors is missing", where=f"{prefix}sensors", reason="missing_field")
    factor = precision_factor(
        record.get("precision", envelope.get("precision", "ns")), where=f"{prefix}precision"
    )
    time_ns = _record_time(record, factor, prefix, default_time_ns)
    return build_reading(
        site=record_site,
        asset=record_asset,
        time_ns=time_ns,
        sensors=record["sensors"],
        quality=record.get("quality"),
        where=where,
        limits=limits,
        now=now,
    )


def decode_json(
    payload: bytes | str,
    *,
    site: str | None = None,
    asset: str | None = None,
    default_time_ns: int | None = None,
    limits: ValidationLimits = DEFAULT_LIMITS,
    now: int | None = None,
) -> list[Reading]:
    """Decode a single reading or a batch; all-or-nothing: the first bad record raises.

    ``site``/``asset`` come from the transport (MQTT topic, gateway identity): records may omit
    them, and a record naming another site is rejected. ``default_time_ns`` stamps records
    without a time (the receipt time); without it such records are rejected.
    """
    document = _loads(payload)
    current = now_ns() if now is None else now
    envelope: Mapping[str, Any] = {}
    records: list[object]
    if isinstance(document, list):
        records, base = document, "readings"
    elif isinstance(document, dict) and "readings" in document:
        envelope = document
        if not isinstance(document["readings"], list):
            raise ValidationError(
                "readings must be a JSON array", where="readings", reason="wrong_type"
            )
        records, base = document["readings"], "readings"
    else:
        return [
            _decode_record(
                document,
                where="",
                envelope=envelope,
                site=site,
                asset=asset,
                default_time_ns=default_time_ns,
                limits=limits,
                now=current,
            )
        ]
    if not records:
        raise DecodeError("the batch holds no readings", where=base, reason="empty_batch")
    if len(records) > limits.max_batch:
        raise DecodeError(
            f"the batch holds {len(records)} readings; the limit is {limits.max_batch}",
            where=base,
            reason="batch_too_large",
        )
    return [
        _decode_record(
            record,
            where=f"{base}[{index}]",
            envelope=envelope,
            site=site,
            asset=asset,
            default_time_ns=default_time_ns,
            limits=limits,
            now=current,
        )
        for index, record in enumerate(records)
    ]


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    """The JSON object of one reading, with the time as integer nanoseconds (exact)."""
    record: dict[str, Any] = {
        "site": reading.site,
        "asset": reading.asset,
        "time": reading.time_ns,
        "sensors": reading.values,
    }
    if reading.quality is not None:
        record["quality"] = reading.quality
    return record


def encode_json(reading: Reading) -> bytes:
    """Encode one reading as a JSON single-reading payload."""
    return json.dumps(reading_to_dict(reading), separators=(",", ":"), allow_nan=False).encode()


def encode_json_batch(readings: Iterable[Reading]) -> bytes:
    """Encode readings as a JSON batch envelope (each record carries its own site)."""
    body = {"precision": "ns", "readings": [reading_to_dict(r) for r in readings]}
    return json.dumps(body, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()
