"""Alembic: upgrade from empty, the models match the migrations, downgrade to empty."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api import migrate
from api.models import Base


def test_upgrade_matches_models_and_downgrade(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    engine = sa.create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert set(Base.metadata.tables) <= tables
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        migrate.downgrade(empty_database_url)
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(empty_database_url)  # and back up again
    finally:
        engine.dispose()
