"""Preventive maintenance: meters and their readings, PM plans and their per-asset schedules.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 22:58:16.011902
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""

    op.create_table(
        "meters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_meters_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("asset_id", "name", name=op.f("uq_meters_asset_id")),
    )
    op.create_table(
        "pm_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("asset_type", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("failure_mode", sa.String(length=128), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("estimated_minutes", sa.Integer(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("every", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=8), nullable=True),
        sa.Column("anchor", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lead_days", sa.Double(), nullable=False),
        sa.Column("meter_name", sa.String(length=64), nullable=True),
        sa.Column("meter_every", sa.Double(), nullable=True),
        sa.Column("meter_lead", sa.Double(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_pm_plans_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_pm_plans_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_plans")),
    )
    with op.batch_alter_table("pm_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pm_plans_site_id"), ["site_id"], unique=False)

    op.create_table(
        "meter_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("reset", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_id"],
            ["meters.id"],
            name=op.f("fk_meter_readings_meter_id_meters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_readings")),
    )
    with op.batch_alter_table("meter_readings", schema=None) as batch_op:
        batch_op.create_index("ix_meter_readings_meter_at", ["meter_id", "at"], unique=False)

    op.create_table(
        "pm_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_due_meter", sa.Double(), nullable=True),
        sa.Column("last_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_pm_schedules_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["pm_plans.id"],
            name=op.f("fk_pm_schedules_plan_id_pm_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pm_schedules")),
        sa.UniqueConstraint("plan_id", "asset_id", name=op.f("uq_pm_schedules_plan_id")),
    )
    with op.batch_alter_table("asset_status", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poor_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pm_plan_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_work_orders_pm_plan_id"), ["pm_plan_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_work_orders_pm_plan_id_pm_plans"),
            "pm_plans",
            ["pm_plan_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    """Revert this revision."""

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_work_orders_pm_plan_id_pm_plans"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_work_orders_pm_plan_id"))
        batch_op.drop_column("pm_plan_id")
    with op.batch_alter_table("asset_status", schema=None) as batch_op:
        batch_op.drop_column("poor_since")

    op.drop_table("pm_schedules")
    with op.batch_alter_table("meter_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_readings_meter_at")

    op.drop_table("meter_readings")
    with op.batch_alter_table("pm_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pm_plans_site_id"))

    op.drop_table("pm_plans")
    op.drop_table("meters")
