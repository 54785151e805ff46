"""``POST /train`` on the service's own HTTP port (beside ``/metrics`` and ``/healthz``):

    POST /train  {"site": "...", "asset": "...", "start": RFC3339, "end": RFC3339}
    Authorization: Bearer <the service token>

The fit runs on the trainer's thread; the request waits for it (up to ``wait_s``) and answers
200 with what was fitted, 400 for a bad body or an asset of another shard, 401/403 without the
right token, 422 when the range holds too little usable data, 504 when the fit is still running.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler

from analytics.training import TrainRequest
from telemetry.health_http import reply_json

Submit = Callable[[tuple[str, str], int, int, str], TrainRequest]
MAX_BODY = 64 * 1024


def parse_time_ns(text: object, where: str) -> int:
    """ns since the epoch of an RFC 3339 time with a timezone (ValueError naming the field)."""
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{where}: not an RFC 3339 time: {text!r}") from exc
    if stamp.tzinfo is None:
        raise ValueError(f"{where}: the time needs a timezone (e.g. Z)")
    return int(stamp.timestamp() * 1e9)


class TrainRoute:
    """Training on request, checked against the service token."""

    def __init__(self, submit: Submit | None, token: str | None, wait_s: float = 120.0) -> None:
        self._submit, self._token, self._wait_s = submit, token, wait_s

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            reply_json(request, 401, {"detail": "a bearer token is required"})
            return
        given = auth.removeprefix("Bearer ").encode()
        if self._token is None or self._submit is None:
            reply_json(
                request, 403, {"detail": "training on request is disabled (no service token)"}
            )
            return
        if not hmac.compare_digest(given, self._token.encode()):
            reply_json(request, 403, {"detail": "wrong token"})
            return
        try:
            length = int(request.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise ValueError(f"body must be 1..{MAX_BODY} bytes of JSON")
            body = json.loads(request.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            site, asset = body.get("site"), body.get("asset")
            if not isinstance(site, str) or not site or not isinstance(asset, str) or not asset:
                raise ValueError("site and asset must be non-empty strings")
            start = parse_time_ns(body.get("start"), "start")
            end = parse_time_ns(body.get("end"), "end")
            job = self._submit((site, asset), start, end, "request")
        except ValueError as exc:
            reply_json(request, 400, {"detail": str(exc)})
            return
        if not job.done.wait(self._wait_s):
            reply_json(
                request, 504, {"detail": "still training; the model is swapped in when done"}
            )
        elif job.error is not None:
            reply_json(request, 422, {"detail": job.error})
        else:
            reply_json(request, 200, {"status": "trained", **(job.result or {})})
