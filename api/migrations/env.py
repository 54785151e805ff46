"""Alembic environment: the URL comes from the caller's config or from the API settings."""

from __future__ import annotations

from alembic import context

from api.db import make_engine
from api.models import Base
from api.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().database_url
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; batch mode does that transparently.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
