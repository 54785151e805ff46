"""Repair work orders whose checklist, notes or parts hold JSON null (issue 15, defect 1).

Before PATCH refused `null`, `{"checklist": null}` was stored as JSON null, and every read of
that order failed. The lists become empty lists; nothing else changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTS = ("checklist", "notes", "parts_used")


def upgrade() -> None:
    """Apply this revision."""
    for column in LISTS:
        # PostgreSQL's json type has no equality operator: compare its text.
        op.execute(
            sa.text(
                f"UPDATE work_orders SET {column} = '[]' "  # noqa: S608 (a fixed column name)
                f"WHERE {column} IS NULL OR CAST({column} AS TEXT) = 'null'"
            )
        )


def downgrade() -> None:
    """Nothing to undo: empty lists are what those orders meant."""
