"""Gateway push of readings (JSON or line protocol) and downsampled reading queries for charts."""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.crud import get_or_404
from api.deps import Gateway, Reader, SessionDep, StateDep
from api.errors import (
    InvalidError,
    PayloadTooLargeError,
    RateLimitedError,
    UnavailableError,
)
from api.models import Asset, utcnow
from api.pagination import PathId
from api.schemas.common import CODE, Problem, PublicSchema, UtcDatetime
from api.services import readings as svc
from telemetry.errors import InfluxFatalError, InfluxRejectedError, InfluxRetryableError

log = logging.getLogger(__name__)
router = APIRouter(tags=["readings"])


class PushResult(PublicSchema):
    """How many readings InfluxDB confirmed."""

    written: int


class ChartData(PublicSchema):
    """Bucketed means per sensor: `sensors[name][i]` belongs to `times_ns[i]`."""

    asset_id: int
    interval_s: int
    times_ns: list[int]
    sensors: dict[str, list[float | None]]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# InfluxDB stores int64 nanoseconds: 1677-09-21 to 2262-04-11; clamp instead of failing.
_INFLUX_MIN_NS, _INFLUX_MAX_NS = -9_223_372_036_854_775_806, 9_223_372_036_854_775_806


def _influx_ns(when: datetime) -> int:
    ns = (when - _EPOCH) // timedelta(microseconds=1) * 1000
    return min(max(ns, _INFLUX_MIN_NS), _INFLUX_MAX_NS)


def _limit(wait: float, what: str) -> None:
    if wait > 0:
        raise RateLimitedError(
            f"too many {what} from this gateway; nothing was stored",
            headers={"Retry-After": str(math.ceil(wait))},
        )


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {
                    "site": "plant-a",
                    "precision": "ms",
                    "readings": [
                        {"asset": "pump-01", "time": 1764226800123, "sensors": {"temp": 41.5}}
                    ],
                },
            },
            "text/plain": {
                "schema": {"type": "string"},
                "example": "telemetry,site=plant-a,asset=pump-01 temp=41.5 1764226800123456789",
            },
        },
    }
}


@router.post(
    "/readings",
    summary="Push a batch of readings (gateway)",
    openapi_extra=_BODY_DOC,
    responses={
        413: {"model": Problem, "description": "Body larger than the gateway limit."},
        429: {
            "model": Problem,
            "description": "Rate limit of pushes, body bytes or readings; see Retry-After.",
        },
        503: {"model": Problem, "description": "InfluxDB unavailable; see Retry-After."},
    },
)
async def push_readings(
    request: Request,
    state: StateDep,
    principal: Gateway,
    precision: Annotated[Literal["ns", "us", "ms", "s"], Query()] = "ns",
) -> PushResult:
    """Validate a whole batch, write it to InfluxDB, and answer 2xx only once it is stored.

    One bad record rejects the batch (422 naming it; nothing is written). 503 with Retry-After
    when InfluxDB is unavailable: keep the batch and retry.
    """
    settings = state.settings.api
    _limit(state.limiter.acquire(principal.actor), "pushes")
    body = await _read_capped(request, settings.max_body_bytes)
    # Charged before decoding: decoding is the work the byte limit bounds.
    _limit(state.byte_limiter.acquire(principal.actor, len(body)), "bytes")
    content_type = request.headers.get("content-type", "")

    def validate() -> svc.PushBatch:
        with state.read_sessions() as session:  # looks up the site and assets, writes nothing
            target = svc.gateway_site(session, principal)
            return svc.prepare(
                state.codec, session, body, content_type=content_type, precision=precision,
                site=target.site_code, allow_unknown=settings.accept_unregistered_assets,
            )  # fmt: skip

    try:
        batch = await run_in_threadpool(validate)
    except InvalidError as exc:
        state.metrics.batches_rejected.labels(str(exc.extra.get("reason", "invalid"))).inc()
        raise
    _limit(state.reading_limiter.acquire(principal.actor, batch.count), "readings")
    try:
        # One request on the client's pooled keep-alive connections; returns once confirmed.
        await run_in_threadpool(state.influx.write_lines, batch.body)
    except InfluxRetryableError as exc:
        delay = math.ceil(exc.retry_after) if exc.retry_after else settings.retry_after_s
        log.warning("push from %s deferred: %s", principal.actor, exc)
        raise UnavailableError(
            "InfluxDB is unavailable; nothing was stored, retry later",
            headers={"Retry-After": str(delay)},
        ) from exc
    except InfluxRejectedError as exc:
        state.metrics.batches_rejected.labels("influx_rejected").inc()
        raise InvalidError(
            f"InfluxDB refused the batch: {exc.server_reason or exc}", reason="influx_rejected"
        ) from exc
    except InfluxFatalError as exc:
        # Our configuration is wrong, not the gateway's data: make it keep the batch.
        log.error("InfluxDB refuses the API's writes: %s", exc)
        raise UnavailableError(
            "the API cannot write to InfluxDB (configuration); retry later",
            headers={"Retry-After": str(settings.retry_after_s * 6)},
        ) from exc
    state.metrics.readings_written.inc(batch.count)
    return PushResult(written=batch.count)


@router.get(
    "/assets/{asset_id}/readings",
    summary="Readings of an asset for a chart",
    responses={503: {"model": Problem, "description": "InfluxDB unavailable."}},
)
async def query_readings(
    asset_id: PathId,
    state: StateDep,
    session: SessionDep,
    _: Reader,
    *,
    start: Annotated[UtcDatetime | None, Query(description="Default: end − 24 h.")] = None,
    end: Annotated[UtcDatetime | None, Query(description="Default: now.")] = None,
    sensors: Annotated[
        str | None, Query(max_length=4000, description="Comma-separated sensor names.")
    ] = None,
    points: Annotated[int, Query(ge=1, le=10_000, description="About this many buckets.")] = 500,
) -> ChartData:
    """Means per time bucket (InfluxQL GROUP BY time()), all registered sensors by default."""
    asset = await run_in_threadpool(get_or_404, session, Asset, asset_id)
    until = end or utcnow()
    since = start or until - timedelta(hours=24)
    if since >= until:
        raise InvalidError("start must be before end", where="start")
    names = [s.strip() for s in (sensors or "").split(",") if s.strip()]
    for name in names:
        if not re.fullmatch(CODE, name) or len(name) > 128:
            raise InvalidError(f"bad sensor name {name!r}", where="sensors")
    start_ns, end_ns = _influx_ns(since), _influx_ns(until)
    try:
        data = await run_in_threadpool(
            lambda: svc.chart_query(
                state.influx,
                session,
                asset,
                sensors=names,
                start_ns=start_ns,
                end_ns=end_ns,
                points=points,
            )
        )
    except (InfluxRetryableError, InfluxFatalError) as exc:
        raise UnavailableError(
            f"InfluxDB is unavailable: {exc}",
            headers={"Retry-After": str(state.settings.api.retry_after_s)},
        ) from exc
    except InfluxRejectedError as exc:
        raise InvalidError(f"InfluxDB refused the query: {exc.server_reason}") from exc
    return ChartData.model_validate(data)
