"""Change counters (conditional GETs), login failures shared by API processes, list indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose writes are counted when this revision was made (api/revisions.py TRACKED);
# a table tracked later gets its row in its own migration.
TRACKED = (
    "alert_events",
    "alerts",
    "areas",
    "asset_status",
    "assets",
    "meter_readings",
    "meters",
    "pm_plans",
    "pm_schedules",
    "sensors",
    "sites",
    "users",
    "work_order_evidence",
    "work_orders",
)


# Rows per table (api/revisions.py SHARDS).
SHARDS = 8


def upgrade() -> None:
    """Apply this revision."""
    counters = op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "shard", name=op.f("pk_change_counters")),
    )
    op.bulk_insert(
        counters,
        [
            {"name": name, "shard": shard, "revision": 0}
            for name in TRACKED
            for shard in range(SHARDS)
        ],
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Double(), nullable=False),
        sa.Column("locked_until", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_work_orders_state_priority_id", "work_orders", ["state", "priority", "id"])
    op.create_index("ix_alerts_updated_at_id", "alerts", ["updated_at", "id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_alerts_updated_at_id", table_name="alerts")
    op.drop_index("ix_work_orders_state_priority_id", table_name="work_orders")
    op.drop_table("login_failures")
    op.drop_table("change_counters")
