"""Limit/offset pagination of list endpoints."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.schemas.common import MAX_ID, Page

P = TypeVar("P", bound=BaseModel)

# 500 rows of the widest resource (work orders) is ~1 MB of JSON: a page, not a dump.
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Rows to skip.")]
# Ids beyond SQL INTEGER cannot exist (and PostgreSQL errors on them): 422, not 500.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# Free-text filters: bounded, and without NUL (PostgreSQL refuses it in text).
QueryText = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


def paginate(
    session: Session,
    stmt: sa.Select[Any],
    schema: type[P],
    limit: int,
    offset: int,
) -> Page[P]:
    """One page of stmt's rows (ordered by the caller) as schema, with the total count."""
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.limit(limit).offset(offset)).all()
    return Page[schema](  # type: ignore[valid-type]
        items=[schema.model_validate(row) for row in rows],
        total=total or 0,
        limit=limit,
        offset=offset,
    )
