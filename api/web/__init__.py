"""The web UI served by the API: a facilities dashboard and a technician view (no build step)."""

from __future__ import annotations

from fastapi import APIRouter

from api.web import actions, pages, public, triage
from api.web.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(triage.router)
router.include_router(public.router)

__all__ = ["STATIC_DIR", "router"]
