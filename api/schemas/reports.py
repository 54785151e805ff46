"""Report shapes that bundle per-asset figures of one site."""

from __future__ import annotations

from datetime import datetime

from api.schemas.common import PublicSchema
from api.schemas.work_orders import Reliability


class SiteReliability(PublicSchema):
    """MTBF / MTTR of every asset of a site over one window."""

    site_id: int
    site: str
    start: datetime
    end: datetime
    assets: list[Reliability]
