"""Asset status: keep the latest condition per asset from the analytics service's batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import InvalidError
from api.models import Asset, AssetStatus, Site
from api.schemas.asset_status import AssetStatusItem, AssetStatusPublic


def _resolve(session: Session, items: list[AssetStatusItem]) -> dict[tuple[str, str], Asset]:
    """Asset of every (site, asset) code pair; an unknown one rejects the batch (422).

    Alert posts refuse unknown sites and assets (`services.alerts.ingest`); a status batch
    follows the same rule, naming the first unknown item so the sender can fix its registry.
    """
    sites = {item.site for item in items}
    rows = session.execute(
        sa.select(Site.code, Asset)
        .join(Asset, Asset.site_id == Site.id)
        .where(Site.code.in_(sites))
    ).all()
    known = {(site, asset.code): asset for site, asset in rows}
    known_sites = {site for site, _ in rows} | set(
        session.scalars(sa.select(Site.code).where(Site.code.in_(sites)))
    )
    for index, item in enumerate(items):
        if item.site not in known_sites:
            raise InvalidError(f"unknown site {item.site!r}", where=f"items[{index}].site")
        if (item.site, item.asset) not in known:
            raise InvalidError(
                f"unknown asset {item.asset!r} in site {item.site!r}",
                where=f"items[{index}].asset",
            )
    return known


def store(session: Session, items: list[AssetStatusItem], now: datetime) -> tuple[int, int]:
    """Upsert the latest status of each asset; (accepted, ignored as older than stored).

    Runs inside a transaction the caller replays on a unique-constraint race (two batches
    inserting the first status of one asset). An item with the same `observed_at` as the
    stored one replaces it, so a retried batch is harmless.
    """
    assets = _resolve(session, items)
    latest: dict[int, AssetStatusItem] = {}
    ignored = 0
    for item in items:
        asset = assets[item.site, item.asset]
        seen = latest.get(asset.id)
        if seen is not None and seen.observed_at > item.observed_at:
            ignored += 1
            continue
        if seen is not None:
            ignored += 1  # superseded by a newer item of the same batch
        latest[asset.id] = item
    stored = {
        row.asset_id: row
        for row in session.scalars(
            sa.select(AssetStatus).where(AssetStatus.asset_id.in_(latest)).with_for_update()
        )
    }
    accepted = 0
    for asset_id, item in latest.items():
        row = stored.get(asset_id)
        if row is not None and item.observed_at < row.observed_at:
            ignored += 1
            continue
        if row is None:
            row = AssetStatus(asset_id=asset_id, site_id=assets[item.site, item.asset].site_id)
            session.add(row)
        _apply(row, item, now)
        accepted += 1
    session.flush()
    return accepted, ignored


# Health below this is poor (the dashboard's band); PM plans count it once it lasts.
POOR_HEALTH = 50.0


def _apply(row: AssetStatus, item: AssetStatusItem, now: datetime) -> None:
    poor = item.health is not None and item.health < POOR_HEALTH and item.state != "learning"
    row.poor_since = (row.poor_since or item.observed_at) if poor else None
    row.state = item.state
    row.health, row.score, row.threshold = item.health, item.score, item.threshold
    row.contributors = [c.model_dump() for c in item.contributors]
    row.message = item.message
    row.observed_at = item.observed_at
    row.learning_until = item.learning_until
    row.updated_at = now


def listing(session: Session, now: datetime, site_id: int | None = None) -> list[AssetStatusPublic]:
    """Every stored status (of one site), by site and asset code, with its age."""
    stmt = (
        sa.select(AssetStatus, Site.code, Asset)
        .join(Asset, Asset.id == AssetStatus.asset_id)
        .join(Site, Site.id == AssetStatus.site_id)
        .order_by(Site.code, Asset.code)
    )
    if site_id is not None:
        stmt = stmt.where(AssetStatus.site_id == site_id)
    return [public(row, site, asset, now) for row, site, asset in session.execute(stmt).all()]


def public(row: AssetStatus, site: str, asset: Asset, now: datetime) -> AssetStatusPublic:
    """One status as the API shows it."""
    fields: dict[str, Any] = {
        "site_id": row.site_id,
        "site": site,
        "asset_id": asset.id,
        "asset": asset.code,
        "asset_name": asset.name,
        "asset_type": asset.asset_type,
        "criticality": asset.criticality,
        "state": row.state,
        "health": row.health,
        "score": row.score,
        "threshold": row.threshold,
        "contributors": row.contributors,
        "message": row.message,
        "observed_at": row.observed_at,
        "learning_until": row.learning_until,
        "updated_at": row.updated_at,
        "age_s": max(0.0, (now - row.observed_at).total_seconds()),
    }
    return AssetStatusPublic.model_validate(fields)
