"""Gateway pushes (decode, authorise per site, write) and chart queries (downsampled InfluxQL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import ForbiddenError, InvalidError
from api.models import Asset, Sensor, Site
from api.security import Principal
from telemetry import FastCodec, LineFormatter, now_ns
from telemetry.codecs.json_codec import decode_json
from telemetry.codecs.line_protocol import decode_line_protocol
from telemetry.errors import PayloadError
from telemetry.influx.client import InfluxClient, quote_ident, quote_literal
from telemetry.reading import Reading

NS = 1_000_000_000
_FORMATTER = LineFormatter()  # its caches are plain dicts: safe to share between threads


@dataclass(frozen=True, slots=True)
class PushTarget:
    """What a gateway may write: one site, by code."""

    site_code: str


def gateway_site(session: Session, principal: Principal) -> PushTarget:
    """The site a gateway credential is bound to; 403 for a credential bound to none.

    Every gateway credential writes exactly one site: machine tokens (site_id), tokens issued
    for a gateway-role user (site_id), and the bootstrap token (EQUIPMON_API__GATEWAY_SITE). A
    gateway user's login token carries no site, so it cannot push at all.
    """
    if principal.site_id is not None:
        code = session.scalar(sa.select(Site.code).where(Site.id == principal.site_id))
        if code is None:
            raise ForbiddenError("the gateway's site no longer exists")
        return PushTarget(code)
    if principal.site_code is None:
        raise ForbiddenError(
            "this gateway credential is bound to no site: issue a token with 'site_id' "
            "(POST /api/v1/tokens), or set EQUIPMON_API__GATEWAY_SITE for the bootstrap token"
        )
    return PushTarget(principal.site_code)


def decode(body: bytes, content_type: str, precision: str, site: str) -> list[Reading]:
    """Decode a JSON or line-protocol body; all or nothing (InvalidError names the record)."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media in ("application/json", ""):
            return decode_json(body, site=site)
        if media == "text/plain":
            return decode_line_protocol(body, precision=precision, site=site)
    except PayloadError as exc:
        raise InvalidError(
            f"batch rejected, nothing written: {exc.detail}", where=exc.where, reason=exc.reason
        ) from exc
    raise InvalidError(
        f"unsupported content type {media!r}; send application/json or text/plain (line protocol)",
        where="Content-Type",
        reason="unsupported_media_type",
    )


@dataclass(frozen=True, slots=True)
class PushBatch:
    """A validated push: its line protocol, ready for InfluxDB, and how many readings."""

    body: bytes
    count: int


def prepare(
    codec: FastCodec,
    session: Session,
    body: bytes,
    *,
    content_type: str,
    precision: str,
    site: str,
    allow_unknown: bool,
) -> PushBatch:
    """Decode, validate and format a push (all or nothing; InvalidError names the record).

    The fast codec takes the documented shapes straight to line protocol; anything it
    declines, and any batch naming an unregistered asset, goes through the general path,
    which words the rejection (the two give the same bytes for what both accept).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    named: list[str] = []
    fast = None
    if media in ("application/json", ""):
        fast = codec.convert(
            body, site=site, asset=None, default_time_ns=None, now=now_ns(), assets=named
        )
    elif media == "text/plain":
        fast = codec.convert_lines(
            body, precision=precision, site=site, asset=None, default_time_ns=None,
            now=now_ns(), assets=named,
        )  # fmt: skip
    if fast is not None and (allow_unknown or not _unknown(session, site, set(named))):
        return PushBatch(*fast)
    readings = decode(body, content_type, precision, site)
    check_assets(
        session, readings, line_protocol=media == "text/plain", allow_unknown=allow_unknown
    )
    return PushBatch(_FORMATTER.lines(readings), len(readings))


def _unknown(session: Session, site: str, assets: set[str]) -> set[str]:
    """The assets of the set that are not registered in the site."""
    known = session.scalars(
        sa.select(Asset.code)
        .join(Site, Asset.site_id == Site.id)
        .where(Site.code == site, Asset.code.in_(assets))
    )
    return assets.difference(known)


def check_assets(
    session: Session, readings: list[Reading], *, line_protocol: bool, allow_unknown: bool
) -> None:
    """Refuse a batch naming an asset not registered in its site (names the first such record)."""
    if allow_unknown:
        return
    sites = {r.site for r in readings}
    known = set(
        session.execute(
            sa.select(Site.code, Asset.code)
            .join(Asset, Asset.site_id == Site.id)
            .where(Site.code.in_(sites))
        ).all()
    )
    for index, reading in enumerate(readings):
        if (reading.site, reading.asset) not in known:
            where = f"point {index + 1}" if line_protocol else f"readings[{index}]"
            raise InvalidError(
                f"batch rejected, nothing written: asset {reading.asset!r} is not registered "
                f"in site {reading.site!r}",
                where=where,
                reason="unknown_asset",
            )


def chart_query(
    influx: InfluxClient,
    session: Session,
    asset: Asset,
    *,
    sensors: list[str],
    start_ns: int,
    end_ns: int,
    points: int,
) -> dict[str, Any]:
    """Mean per time bucket of each sensor, about `points` buckets over [start, end)."""
    site = session.scalar(sa.select(Site.code).where(Site.id == asset.site_id))
    if not sensors:
        sensors = list(
            session.scalars(
                sa.select(Sensor.name).where(Sensor.asset_id == asset.id).order_by(Sensor.name)
            )
        )
    interval_s = max(1, math.ceil((end_ns - start_ns) / NS / points))
    selected = (
        ", ".join(f"mean({quote_ident(s)}) AS {quote_ident(s)}" for s in sensors)
        if sensors
        else "mean(*)"
    )
    query = (
        f"SELECT {selected} FROM telemetry WHERE site = {quote_literal(site or '')} "  # noqa: S608 (every name is quoted)
        f"AND asset = {quote_literal(asset.code)} AND time >= {start_ns} AND time < {end_ns} "
        f"GROUP BY time({interval_s}s) fill(none)"
    )
    times: list[int] = []
    values: dict[str, list[float | None]] = {}
    for series in influx.query(query):
        names = [c.removeprefix("mean_") if not sensors else c for c in series.columns[1:]]
        for name in names:
            values.setdefault(name, [])
        for row in series.values:
            times.append(int(row[0]))
            for name, value in zip(names, row[1:], strict=True):
                values[name].append(None if value is None else float(value))
    return {"asset_id": asset.id, "interval_s": interval_s, "times_ns": times, "sensors": values}
