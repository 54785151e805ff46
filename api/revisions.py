"""Change counters: a revision per table, bumped in the same transaction as each write to it.

Conditional GETs answer 304 from these (`ETag` / `If-None-Match`). Why a counter row rather
than `max(updated_at)` and a count: two writers that commit out of clock order (or a delete
and an insert) leave those unchanged while the content changed, so a poller would keep a
stale page. A counter bumped inside the writing transaction becomes visible exactly when the
write does, in every process and on every replica, since it lives in the database.

The session of every write (``api.db.make_sessionmaker``) records which tables its flushes
and DML statements touched and, just before it commits, bumps their counters, one `UPDATE`
each in name order. Taken last and in one order, the counter rows' locks cannot deadlock
(nothing else is locked after them) and are held only for the commit itself (PostgreSQL).
Each table has SHARDS rows; a transaction bumps one of them (chosen at random) and readers
take the sum, which grows by one with each committed write: two writers of one table meet
on one row lock only one time in SHARDS, instead of every writer of the table waiting for
the previous one's commit.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker

from api.models import ChangeCounter

# Tables readers may ask about; each has a row (migration 0006). Writes to others (audit
# log, webhook queue, tokens, login failures) change no list or page that is polled.
TRACKED = frozenset(
    {
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
    }
)
_TOUCHED = "equipmon_touched_tables"
# Rows per table (migration 0006 made them).
SHARDS = 8
_counters: sa.Table = ChangeCounter.__table__  # type: ignore[assignment]


_BUMP = {
    "qmark": "UPDATE change_counters SET revision = revision + 1 WHERE name = ? AND shard = ?",
    "format": "UPDATE change_counters SET revision = revision + 1 WHERE name = %s AND shard = %s",
    "pyformat": "UPDATE change_counters SET revision = revision + 1 WHERE name = %s AND shard = %s",
}


def _touch(session: Session, table: Any) -> None:
    name = getattr(table, "name", None)
    if name in TRACKED:
        session.info.setdefault(_TOUCHED, set()).add(name)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # Still the pre-flush state here: what was new, changed or deleted in this flush.
    for obj in (*session.new, *session.dirty, *session.deleted):
        _touch(session, getattr(obj, "__table__", None))


def _on_execute(state: ORMExecuteState) -> None:
    # INSERT/UPDATE/DELETE statements run through the session (bulk and Core DML alike).
    if state.is_insert or state.is_update or state.is_delete:
        _touch(state.session, getattr(state.statement, "table", None))


def _before_commit(session: Session) -> None:
    # before_commit runs before the commit's own flush: flush first so that is counted too.
    session.flush()
    touched = session.info.pop(_TOUCHED, None)
    if not touched:
        return
    connection = session.connection()  # Core: no ORM statement machinery for a counter
    shard = random.randrange(SHARDS)  # spreads lock waits; not a secret
    sql = _BUMP.get(connection.dialect.paramstyle)
    for name in sorted(touched):
        if sql is not None:  # driver SQL: nothing to build or look up per write
            connection.exec_driver_sql(sql, (name, shard))
            continue
        connection.execute(  # pragma: no cover (SQLite and psycopg have their SQL above)
            sa.update(_counters)
            .where(_counters.c.name == name, _counters.c.shard == shard)
            .values(revision=_counters.c.revision + 1)
        )


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_TOUCHED, None)


def track(factory: sessionmaker[Session]) -> None:
    """Make the sessions of factory bump the counters of the tables they write."""
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "do_orm_execute", _on_execute)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_rollback", _forget)


def current(session: Session | sa.Connection, tables: Iterable[str]) -> str:
    """The tables' revisions as one string (read before the content it validates, so a tag
    is never newer than what it is sent with)."""
    names = sorted(tables)
    rows = session.execute(
        sa.select(_counters.c.name, sa.func.sum(_counters.c.revision))
        .where(_counters.c.name.in_(names))
        .group_by(_counters.c.name)
    ).all()
    return ",".join(f"{name}:{rev}" for name, rev in sorted(rows))


# One table's revision as driver SQL, by DB-API paramstyle: no statement to build or to look
# up in SQLAlchemy's compiled cache on every list request (the read was 14 % of the list
# route's samples, session 11).
_CURRENT_ONE = {
    "qmark": "SELECT sum(revision) FROM change_counters WHERE name = ?",
    "format": "SELECT sum(revision) FROM change_counters WHERE name = %s",
    "pyformat": "SELECT sum(revision) FROM change_counters WHERE name = %s",
}


def current_one(connection: sa.Connection, table: str) -> str:
    """One table's revision, as `current` would give it for [table]."""
    sql = _CURRENT_ONE.get(connection.dialect.paramstyle)
    if sql is None:  # pragma: no cover (SQLite and psycopg are qmark and format/pyformat)
        return current(connection, [table])
    revision = connection.exec_driver_sql(sql, (table,)).scalar()
    return "" if revision is None else f"{table}:{revision}"


def etag(revisions: str, *parts: object) -> str:
    """A weak ETag of the revisions and whatever else the representation depends on (the
    caller, the query)."""
    raw = "|".join([revisions, *map(str, parts)])
    return f'W/"{hashlib.sha256(raw.encode()).hexdigest()[:32]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names tag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = tag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == bare for part in if_none_match.split(","))
