"""SQL engine and sessions: SQLite (embedded default) or PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# How often a transaction that lost a race (unique violation, serialisation failure, deadlock)
# is replayed; each replay sees the winner's row, so two attempts are almost always enough.
MAX_TX_ATTEMPTS = 5


def make_engine(url: str) -> sa.Engine:
    """An engine for url; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue it ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once
        # (the busy timeout does not apply to lock upgrades); taking the write lock up front
        # serialises writers the way PostgreSQL's row locks do.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def is_race(exc: DBAPIError) -> bool:
    """Whether a database error means 'another transaction got there first: replay'."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)
    # 40001 serialization_failure, 40P01 deadlock_detected.
    return code in ("40001", "40P01") or (
        isinstance(exc, OperationalError) and "locked" in str(exc.orig)
    )


def run_in_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run work in a transaction, replaying it when it lost a race with a concurrent one."""
    for attempt in range(1, MAX_TX_ATTEMPTS + 1):
        with factory() as session:
            try:
                with session.begin():
                    return work(session)
            except DBAPIError as exc:
                if attempt == MAX_TX_ATTEMPTS or not is_race(exc):
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session
