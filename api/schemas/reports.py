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


class PmCompliance(PublicSchema):
    """Preventive orders of a site that fell due in a window, by how they ended.

    `compliance` = on time / (on time + late + skipped + overdue): the share of due preventive
    maintenance done by its due date (None when nothing fell due).
    """

    site_id: int
    site: str
    start: datetime
    end: datetime
    on_time: int
    late: int
    skipped: int
    overdue: int
    open_not_due: int
    compliance: float | None
