"""The SQL fixture: a fresh database per test, on SQLite and (with DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa


def test_fresh_database_accepts_a_schema_and_data(empty_database_url: str) -> None:
    engine = sa.create_engine(empty_database_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "probe",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
    )
    with engine.begin() as conn:
        assert sa.inspect(conn).get_table_names() == []  # empty: no leftovers from other tests
        metadata.create_all(conn)
        conn.execute(table.insert(), [{"name": "pump ü"}, {"name": "fan"}])
    with engine.connect() as conn:
        assert conn.execute(sa.select(table.c.name).order_by(table.c.id)).scalars().all() == [
            "pump ü",
            "fan",
        ]
    engine.dispose()


def test_database_url_is_a_private_copy_at_the_head_revision(database_url: str) -> None:
    from alembic.script import ScriptDirectory

    from api import migrate

    head = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_current_head()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
            assert conn.execute(sa.text("SELECT count(*) FROM sites")).scalar() == 0
    finally:
        engine.dispose()
