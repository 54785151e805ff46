"""Sort InfluxDB failures into rejected data, retryable trouble and fatal misconfiguration."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping

from telemetry.errors import (
    InfluxError,
    InfluxFatalError,
    InfluxRejectedError,
    InfluxRetryableError,
)

_DROPPED = re.compile(r"dropped=(\d+)")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_message(body: bytes | str | None) -> str:
    """The server's explanation: the 'error'/'message' of a JSON body, or the body's text."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return text.strip()[:500]


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes | str | None, *, action: str
) -> InfluxError:
    """Turn a non-2xx response into the matching InfluxError subclass."""
    reason = server_message(body)
    detail = f"InfluxDB {action} failed with HTTP {status}" + (f": {reason}" if reason else "")
    if status in (401, 403):
        return InfluxFatalError(f"{detail} (check the credentials and permissions)", status=status)
    if status == 404:
        return InfluxFatalError(f"{detail} (does the database/bucket exist?)", status=status)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        return InfluxRetryableError(detail, status=status, retry_after=retry_after)
    dropped = _DROPPED.search(reason)
    return InfluxRejectedError(
        detail,
        status=status,
        server_reason=reason,
        dropped=int(dropped.group(1)) if dropped else None,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None
