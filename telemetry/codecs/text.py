"""Payload bytes to text: UTF-8 only, with a typed error that says where decoding failed."""

from __future__ import annotations

from telemetry.errors import DecodeError


def payload_text(payload: bytes | bytearray | memoryview | str) -> str:
    """The payload as a str; invalid UTF-8 raises DecodeError(reason='invalid_utf8')."""
    if isinstance(payload, str):
        return payload
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"payload is not valid UTF-8 ({exc.reason} at byte {exc.start})",
            where=f"byte {exc.start}",
            reason="invalid_utf8",
        ) from exc
