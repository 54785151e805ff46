"""The durable spool: SQLite in WAL mode holding validated line protocol until InfluxDB has it.

Why SQLite/WAL: a group of messages becomes durable with one commit (one fsync of the WAL with
``synchronous=FULL``: about 1 ms on the development disk for 100 rows), readers such as the
``dead-letters`` command do not block the writer, and a crash mid-transaction leaves the last
committed state. ``synchronous=FULL`` is the default because an acknowledged message must survive
a power cut too; ``normal`` survives only a killed process (the WAL is in the page cache) and is
offered for disks where fsync is slow.

Each row holds the messages of one group commit (split at the writer's batch limits), already
decoded and formatted as line protocol, one reading per line, with the topic of each run of
lines (bad input never enters the spool: it goes to ``dead_letters`` in the same transaction).
Totals are kept in the ``totals`` table in the same transactions, so they are exact across
restarts. A bad MQTT message's identity (``MessageIdentity``) is kept in ``dead_letter_keys`` in
the transaction that stores its dead letter, which is the one its acknowledgement waits for: a
redelivery of it (after a crash between the commit and the ack) is recognised and adds none.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from collector.capacity import DiskUsage, Reserve, measure_fs
from collector.errors import SpoolError, SpoolFullError
from collector.redelivery import REDELIVERY_HORIZON, DeadLetterKeys
from collector.spool_records import (
    SCHEMA,
    DeadLetter,
    MessageIdentity,
    SpooledRow,
    SpoolEntry,
    StoredDeadLetter,
    message_identity,
)

# What a dead letter takes in the file, near enough (its row overhead is small beside these).
_DEAD_SIZE = (
    "LENGTH(CAST(payload AS BLOB)) + LENGTH(CAST(detail AS BLOB)) + LENGTH(CAST(topic AS BLOB))"
)

# An INSERT's parameters: topic, body, readings, oldest receipt time, per-line topic runs.
_Row = tuple[str, bytes, int, int, str | None]


class Spool:
    """Thread-safe access to the spool file (one connection, one lock: SQLite serialises anyway)."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "full",
        dead_letter_max: int = 10_000,
        dead_letter_payload_bytes: int = 65_536,
        row_max_readings: int = 5_000,
        row_max_bytes: int = 4 * 1024 * 1024,
        dead_letter_max_bytes: int = 16 * 1024 * 1024,
        reserve: Reserve | None = None,
        check_writable: bool = True,
        redelivery_horizon: int = REDELIVERY_HORIZON,
    ) -> None:
        self.path = path
        self._wal_path = Path(f"{path}-wal")
        self.reserve = reserve
        self.dead_letter_max_bytes = dead_letter_max_bytes
        # A group's messages share rows up to the writer's batch limits (a batch is whole rows).
        self._row_max_readings = row_max_readings
        self._row_max_bytes = row_max_bytes
        self._dead_letter_max = dead_letter_max
        self._dead_letter_payload_bytes = dead_letter_payload_bytes
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            # Several collectors or the dead-letters command may open the file at once.
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            # Builds with SECURE_DELETE on (Debian's) zero every freed page, so a delete writes
            # as much WAL as it frees: on a full disk it cannot run. FAST zeroes only pages it
            # writes anyway, so a drain's deletes take a few pages (docs/collector.md).
            self._db.execute("PRAGMA secure_delete=FAST")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(spool)")}
            if "line_topics" not in columns:  # a spool written by an older version
                self._db.execute("ALTER TABLE spool ADD COLUMN line_topics TEXT")
            self._size_wal()
            if check_writable:
                self._check_writable()
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc
        self.bytes, self.rows, self.readings = self._scan()
        self._dead_bytes = self._scan_dead_bytes()
        with self._lock:
            self._keys = DeadLetterKeys(self._db, redelivery_horizon)
        self._messages = self.totals().get("mqtt_messages", 0)

    def _size_wal(self) -> None:
        """Fit the WAL to the file system: it is part of what the spool takes on disk.

        SQLite's default checkpoint every 1,000 pages (4 MiB) would be a third of a 12 MiB
        disk; 1/64 of the file system (at least 64 pages) keeps it within the headroom. The
        size limit truncates a WAL that a large transaction grew, once it is checkpointed.
        """
        page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        total = measure_fs(self.path.parent)[1]
        pages = max(64, min(1000, total // 64 // page))
        self._db.execute(f"PRAGMA wal_autocheckpoint={pages}")
        self._db.execute(f"PRAGMA journal_size_limit={pages * page}")

    def _check_writable(self) -> None:
        """Write once at start: a read-only file or folder is found now, not at the first message.

        A full disk is not an error here: the spool may hold a backlog to drain (holding back).
        """
        try:
            # Rewriting the header's user_version is a real write that changes nothing.
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"PRAGMA user_version={version}")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if not _is_full(exc):
                raise

    def _scan_dead_bytes(self) -> int:
        with self._lock:
            return self._scan_dead_bytes_locked()

    def _scan_dead_bytes_locked(self) -> int:
        row = self._db.execute(
            f"SELECT COALESCE(SUM({_DEAD_SIZE}), 0) FROM dead_letters"  # noqa: S608 (constant)
        ).fetchone()
        return int(row[0])

    def disk_usage(self) -> DiskUsage:
        """What the spool takes on disk (pages in use + WAL) and what its file system has left."""
        with self._lock:
            page_count = int(self._db.execute("PRAGMA page_count").fetchone()[0])
            free_pages = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
            page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        try:
            wal = self._wal_path.stat().st_size
        except FileNotFoundError:
            wal = 0
        try:
            main = self.path.stat().st_size
        except FileNotFoundError:
            main = 0
        free, total = measure_fs(self.path.parent)
        used = (page_count - free_pages) * page_size + wal
        return DiskUsage(spool_bytes=used, file_bytes=main + wal, free_bytes=free,
                         total_bytes=total, rows=self.rows)  # fmt: skip

    def _scan(self) -> tuple[int, int, int]:
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*), COALESCE(SUM(readings), 0) "
                "FROM spool"
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def close(self) -> None:
        """Close the database (the WAL is checkpointed by SQLite on the last close)."""
        with self._lock:
            self._db.close()

    # -- hot path ----------------------------------------------------------------------------

    def append(
        self, entries: Iterable[SpoolEntry], dead: Iterable[DeadLetter] = (), *, messages: int = 0
    ) -> list[DeadLetter]:
        """Make a group of accepted messages and dead letters durable in one transaction.

        ``messages`` is how many MQTT messages the group holds (the committer's; 0 for other
        sources): it dates the keys of bad messages (``REDELIVERY_HORIZON``). Returns the dead
        letters stored: a redelivery of a bad message already stored is not stored again.
        """
        entries = list(entries)
        dead = list(dead)
        totals: dict[str, int] = {}
        if entries:
            totals["messages_spooled"] = len(entries)
            totals["readings_spooled"] = sum(e.readings for e in entries)
        if messages:
            totals["mqtt_messages"] = messages
        rows = self._pack(entries)
        with self._lock:
            stored, keys = self._keys.first_deliveries(dead, self._messages + messages)
            _count_dead_letters(stored, totals)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO spool (topic, body, readings, received_ns, line_topics)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._insert_dead_letters(stored)
                expired = self._keys.write(keys, self._messages, messages)
                self._add_totals(totals)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._dead_bytes = self._scan_dead_bytes_locked()
                if _is_full(exc):
                    raise SpoolFullError(f"spool append failed: {exc}") from exc
                raise SpoolError(f"spool append failed: {exc}") from exc
            self._keys.committed(keys, expired)
            self._messages += messages
            self.bytes += sum(len(row[1]) for row in rows)
            self.rows += len(rows)
            self.readings += sum(e.readings for e in entries)
        return stored

    def _pack(self, entries: list[SpoolEntry]) -> list[_Row]:
        """A group's messages as few rows as the row limits allow, in arrival order.

        Per-row costs dominated the spool with one row per message: SQLite's B-tree work, and
        above all the GIL, which the sqlite3 module releases and must win back around every
        statement step while the network thread keeps it busy (a 500-row group commit took
        ~40 ms on a loaded machine). One row per group makes a commit a handful of steps.
        """
        if not entries:
            return []
        topics, bodies, counts, received = zip(*entries, strict=True)
        readings = sum(counts)
        size = sum(map(len, bodies)) + len(bodies) - 1  # joined with newlines
        if readings <= self._row_max_readings and size <= self._row_max_bytes:
            # The usual group: one row, built in a few C-level passes (this runs on the
            # committer thread, which shares the GIL with the network thread).
            first = topics[0]
            index = None
            if topics.count(first) != len(topics):
                index = "\n".join(map("{}\t{}".format, counts, topics))
            return [(first, b"\n".join(bodies), readings, min(received), index)]
        return self._pack_split(entries)

    def _pack_split(self, entries: list[SpoolEntry]) -> list[_Row]:
        """``_pack`` for a group larger than one row's limits: split in arrival order."""
        rows: list[_Row] = []
        bodies: list[bytes] = []
        runs: list[list[Any]] = []  # [topic, lines] per run of consecutive same-topic messages
        readings = size = 0
        oldest = 0

        def flush() -> None:
            index = None if len(runs) == 1 else "\n".join(f"{n}\t{t}" for t, n in runs)
            rows.append((runs[0][0], b"\n".join(bodies), readings, oldest, index))

        for entry in entries:
            if bodies and (
                readings + entry.readings > self._row_max_readings
                or size + len(entry.body) > self._row_max_bytes
            ):
                flush()
                bodies, runs, readings, size = [], [], 0, 0
            if not bodies or entry.received_ns < oldest:
                oldest = entry.received_ns
            bodies.append(entry.body)
            readings += entry.readings
            size += len(entry.body) + 1
            if runs and runs[-1][0] == entry.topic:
                runs[-1][1] += entry.readings
            else:
                runs.append([entry.topic, entry.readings])
        if bodies:
            flush()
        return rows

    def _insert_dead_letters(self, dead: list[DeadLetter]) -> None:
        """Store dead letters (payloads cut to the configured size); call inside a transaction."""
        if not dead:
            return
        cut = self._dead_letter_payload_bytes
        values = [(d.received_ns, d.reason, d.detail, d.topic, d.payload[:cut], d.payload_size)
                  for d in dead]  # fmt: skip
        self._db.executemany(
            "INSERT INTO dead_letters (received_ns, reason, detail, topic, payload,"
            " payload_size) VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )
        self._dead_bytes += sum(len(v[2].encode()) + len(v[3].encode()) + len(v[4]) for v in values)
        self._trim_dead_letters()

    def _trim_dead_letters(self) -> None:
        """Bounded by count and by bytes: the newest letters stay (the totals keep counting).

        The byte bound is what keeps bad input from filling the spool's disk: the dead letters
        share the file with the readings, and however much bad input arrives they never take
        more than ``dead_letter_max_bytes`` of it, so good readings keep their room.
        """
        cursor = self._db.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
            (self._dead_letter_max,),
        )
        if cursor.rowcount > 0:
            self._dead_bytes = self._scan_dead_bytes_locked()
        if self._dead_bytes <= self.dead_letter_max_bytes:
            return
        excess = self._dead_bytes - self.dead_letter_max_bytes
        cut_id, freed = None, 0
        query = f"SELECT id, {_DEAD_SIZE} FROM dead_letters ORDER BY id"  # noqa: S608 (constant)
        for row_id, size in self._db.execute(query):
            cut_id, freed = row_id, freed + int(size)
            if freed >= excess:
                break
        if cut_id is not None:
            self._db.execute("DELETE FROM dead_letters WHERE id <= ?", (cut_id,))
            self._dead_bytes -= freed

    def _add_totals(self, totals: Mapping[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO totals (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            list(totals.items()),
        )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing was open
            self._db.execute("ROLLBACK")

    # -- writer side ------------------------------------------------------------------------

    def read_batch(
        self, max_readings: int, max_bytes: int, exclude: frozenset[int] = frozenset()
    ) -> list[SpooledRow]:
        """The oldest rows not in ``exclude`` (rows another writer lane holds), up to the limits
        (always at least one row when any is available)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, topic, body, readings, received_ns, line_topics FROM spool"
                " ORDER BY id LIMIT ?",
                (max(1, max_readings) + len(exclude),),
            )
            rows: list[SpooledRow] = []
            readings = size = 0
            for row_id, topic, body, count, received, line_topics in cursor:
                if row_id in exclude:
                    continue
                if rows and (readings + count > max_readings or size + len(body) > max_bytes):
                    break
                rows.append(SpooledRow(row_id, topic, body, count, received, line_topics))
                readings += count
                size += len(body)
            cursor.close()
        return rows

    def delete(
        self, rows: Iterable[SpooledRow], *, written: int, dead: Iterable[DeadLetter] = ()
    ) -> None:
        """Remove rows InfluxDB confirmed (or that were dead-lettered), in one transaction."""
        rows = list(rows)
        dead = list(dead)
        totals = {"readings_written": written} if written else {}
        _count_dead_letters(dead, totals)
        ids = [r.id for r in rows]
        with self._lock:
            try:
                self._delete_locked(ids, dead, totals)
            except sqlite3.Error as exc:
                self._rollback()
                self._dead_bytes = self._scan_dead_bytes_locked()
                if not _is_full(exc):
                    raise SpoolError(f"spool delete failed: {exc}") from exc
                if self.reserve is None or not self.reserve.release():
                    raise SpoolFullError(
                        f"spool delete failed: {exc}; the spool has no reserve left to give "
                        f"back, so free some space on {self.path.parent} (the drain needs room "
                        "for its WAL)"
                    ) from exc
                # The disk is full: the reserve is given back, so the delete (and the
                # checkpoint that lets the WAL start over) has room now.
                try:
                    self._delete_locked(ids, dead, totals)
                except sqlite3.Error as again:
                    self._rollback()
                    raise SpoolError(f"spool delete failed: {again}") from again
            if self.reserve is not None and not self.reserve.held:
                # Hand the WAL's space back while the disk is short of it.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.bytes -= sum(len(r.body) for r in rows)
            self.rows -= len(rows)
            self.readings -= sum(r.readings for r in rows)

    def _delete_locked(
        self, ids: list[int], dead: list[DeadLetter], totals: dict[str, int]
    ) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        # A batch is always the oldest rows in id order: one range delete removes it.
        if ids and ids == list(range(ids[0], ids[-1] + 1)):
            self._db.execute("DELETE FROM spool WHERE id BETWEEN ? AND ?", (ids[0], ids[-1]))
        else:
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
        self._insert_dead_letters(dead)
        self._add_totals(totals)
        self._db.execute("COMMIT")

    # -- inspection -------------------------------------------------------------------------

    def oldest_received_ns(self) -> int | None:
        """Receipt time of the oldest spooled message (None when empty)."""
        with self._lock:
            row = self._db.execute("SELECT received_ns FROM spool ORDER BY id LIMIT 1").fetchone()
        return int(row[0]) if row else None

    def age_s(self, now_ns: int | None = None) -> float:
        """Seconds since the oldest spooled message arrived (0 when empty)."""
        oldest = self.oldest_received_ns()
        if oldest is None:
            return 0.0
        return max(0.0, ((now_ns if now_ns is not None else time.time_ns()) - oldest) / 1e9)

    def totals(self) -> dict[str, int]:
        """The persistent totals (messages/readings spooled, readings written, dead letters)."""
        with self._lock:
            return {str(k): int(v) for k, v in self._db.execute("SELECT name, value FROM totals")}

    def dead_letters(self, limit: int = 20) -> list[StoredDeadLetter]:
        """The newest dead letters, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, received_ns, reason, detail, topic, payload, payload_size "
                "FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            StoredDeadLetter(int(r[0]), int(r[1]), r[2], r[3], r[4], bytes(r[5]), int(r[6]))
            for r in rows
        ]


def _is_full(exc: sqlite3.Error | OSError) -> bool:
    """Whether an error means the disk (or the file's quota) is full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    # The primary code (the low byte) is SQLITE_FULL whatever the extended code says.
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL


def _count_dead_letters(dead: Iterable[DeadLetter], totals: dict[str, int]) -> None:
    """Add one ``dead_letters:<reason>`` total per dead letter."""
    for letter in dead:
        key = f"dead_letters:{letter.reason}"
        totals[key] = totals.get(key, 0) + 1


__all__ = [
    "REDELIVERY_HORIZON",
    "SCHEMA",
    "DeadLetter",
    "MessageIdentity",
    "Spool",
    "SpoolEntry",
    "SpooledRow",
    "StoredDeadLetter",
    "message_identity",
]
