"""Liveness, readiness (SQL database and InfluxDB) and Prometheus metrics; no auth needed."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.errors import UnavailableError
from api.schemas.common import Problem
from telemetry.errors import InfluxError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    """Liveness: answers while the event loop runs."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The SQL database and InfluxDB answer",
    responses={503: {"model": Problem, "description": "A backing store is down."}},
)
async def readyz(state: StateDep) -> dict[str, str]:
    """Readiness: 200 when both backing stores answer, else 503 naming the failing one."""

    def check_sql() -> None:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await run_in_threadpool(check_sql)
    except sa.exc.SQLAlchemyError as exc:
        raise UnavailableError(
            f"SQL database: {exc.__class__.__name__}",
            headers={"Retry-After": str(state.settings.api.retry_after_s)},
        ) from exc
    try:
        await run_in_threadpool(state.influx.server_version)
    except InfluxError as exc:
        raise UnavailableError(
            f"InfluxDB: {exc}", headers={"Retry-After": str(state.settings.api.retry_after_s)}
        ) from exc
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
