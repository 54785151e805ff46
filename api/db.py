"""SQL engine and sessions: SQLite (embedded default) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from api import revisions

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Longest a writer queues in-process before it goes on to SQLite's own busy timeout.
WRITER_WAIT_S = 30.0
_HOLDS_WRITE_LOCK = "equipmon_holds_write_lock"
_QUERY_ONLY = "equipmon_query_only"

# How often a transaction that lost a race (unique violation, serialisation failure, deadlock)
# is replayed; each replay sees the winner's row, so two attempts are almost always enough.
MAX_TX_ATTEMPTS = 5


def json_loads(text: str | bytes) -> Any:
    """JSON columns decoded by orjson (a list page decodes 150 of them; the standard library
    took ~1.5 ms of them a page), by the standard library if orjson refuses (NaN)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> sa.Engine:
    """An engine for url; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE.

    ``sqlite_synchronous``: SQLite's `PRAGMA synchronous` (`api.sqlite_synchronous`).
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_deserializer=json_loads
        )
    engine = sa.create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, json_deserializer=json_loads
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue it ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: every commit is fsynced before it returns (the default). NORMAL: in WAL mode
        # only checkpoints are; a power cut may undo the last commits, never corrupt.
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # Readers never take the write lock: in WAL mode they read a snapshot beside the
            # one writer. (BEGIN IMMEDIATE for every request queued each GET behind every
            # other request, and SQLite's busy handler waits by sleeping, up to 100 ms a try:
            # that was the API's p99, issue 20.) query_only makes a write in a read
            # transaction an error at once instead of a rare SQLITE_BUSY under load.
            _query_only(connection, True)
            connection.exec_driver_sql("BEGIN")
            return
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once
        # (the busy timeout does not apply to lock upgrades); taking the write lock up front
        # serialises writers the way PostgreSQL's row locks do. Writers of this process queue
        # on a lock first: SQLite's busy handler polls with sleeps of up to 100 ms, a queue
        # wakes the next writer at once (another process still meets the busy timeout).
        if writers.acquire(timeout=WRITER_WAIT_S):
            connection.info[_HOLDS_WRITE_LOCK] = True
        else:
            logger.warning("a writer waited %s s for the in-process write queue", WRITER_WAIT_S)
        try:
            _query_only(connection, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise

    def _query_only(connection: sa.Connection, on: bool) -> None:
        # The pragma only when it changes: most transactions on a connection are reads, and
        # the statement was a third of beginning one. connection.info lives as long as the
        # DB-API connection (a new one starts with query_only off).
        if connection.info.get(_QUERY_ONLY, False) != on:
            connection.exec_driver_sql(f"PRAGMA query_only={int(on)}")
            connection.info[_QUERY_ONLY] = on

    def _release(info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_WRITE_LOCK, False):
            writers.release()

    # However the transaction ends: commit, rollback, or the pool's reset of a connection
    # returned (or invalidated) without either.
    event.listen(engine, "commit", lambda connection: _release(connection.info))
    event.listen(engine, "rollback", lambda connection: _release(connection.info))

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        _release(connection_record.info)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, connection_record: Any, exception: Any) -> None:
        _release(connection_record.info)

    writers = threading.Lock()
    return engine


# Execution option of the engine behind read-only sessions (``make_sessionmaker(read_only=True)``).
READ_ONLY = "equipmon_read_only"


def make_sessionmaker(engine: sa.Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after it).

    ``read_only``: for requests that only read (GET) and token lookups. On SQLite they start a
    deferred transaction and may not write; on PostgreSQL they run in autocommit. Writing
    sessions bump the change counters of the tables they write (api/revisions.py).
    """
    if read_only:
        options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name != "sqlite":
            # PostgreSQL gives each statement of a READ COMMITTED transaction its own snapshot,
            # so a transaction around reads adds nothing but its BEGIN and ROLLBACK: two of a
            # cached list page's four round trips (session 11). Each read commits by itself.
            options["isolation_level"] = "AUTOCOMMIT"
        return sessionmaker(engine.execution_options(**options), expire_on_commit=False)
    factory = sessionmaker(engine, expire_on_commit=False)
    revisions.track(factory)
    return factory


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
            except StaleDataError:
                # A versioned row (work orders) changed under us: another transaction won.
                if attempt == MAX_TX_ATTEMPTS:
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session
