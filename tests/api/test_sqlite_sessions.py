"""SQLite sessions: readers never wait for the writer, writers queue in-process, and a read
session cannot write (issue 20: BEGIN IMMEDIATE on every request was the API's p99)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from api.db import make_engine, make_sessionmaker


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        conn.exec_driver_sql("INSERT INTO t (v) VALUES (1)")
    return engine


def test_a_reader_is_not_blocked_by_an_open_write_transaction(engine: sa.Engine) -> None:
    writes, reads = make_sessionmaker(engine), make_sessionmaker(engine, read_only=True)
    with writes() as writer:
        writer.execute(sa.text("UPDATE t SET v = 2"))  # holds SQLite's write lock, uncommitted
        done = threading.Event()
        seen: list[int] = []

        def read() -> None:
            with reads() as reader:
                seen.append(int(reader.execute(sa.text("SELECT v FROM t")).scalar_one()))
            done.set()

        threading.Thread(target=read, daemon=True).start()
        # Under BEGIN IMMEDIATE the reader would wait for this commit (30 s busy timeout).
        assert done.wait(10), "the reader waited for the writer"
        assert seen == [1]  # the snapshot before the uncommitted write
        writer.commit()


def test_a_read_session_cannot_write(engine: sa.Engine) -> None:
    reads = make_sessionmaker(engine, read_only=True)
    with reads() as reader, pytest.raises(OperationalError, match="readonly"):
        reader.execute(sa.text("UPDATE t SET v = 3"))
    with make_sessionmaker(engine)() as writer:  # the same pooled connection writes again
        writer.execute(sa.text("UPDATE t SET v = 4"))
        writer.commit()
        assert writer.execute(sa.text("SELECT v FROM t")).scalar_one() == 4


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "error"])
def test_the_write_queue_is_released_however_a_transaction_ends(
    engine: sa.Engine, ending: str
) -> None:
    sessions = make_sessionmaker(engine)
    session = sessions()
    session.execute(sa.text("UPDATE t SET v = v + 1"))
    if ending == "commit":
        session.commit()
    elif ending == "rollback":
        session.rollback()
    elif ending == "error":
        with pytest.raises(OperationalError):
            session.execute(sa.text("UPDATE no_such_table SET v = 1"))
        session.rollback()
    session.close()
    # The next writer (another thread, so a leaked lock would show) gets in at once.
    done = threading.Event()

    def write() -> None:
        with sessions() as other:
            other.execute(sa.text("UPDATE t SET v = 10"))
            other.commit()
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(10), f"the write queue was not released after {ending}"
