"""Bearer token → principal, remembered briefly per process so a request need not look it up.

Correctness: an entry is kept at most ``ttl_s`` and never past the token's own expiry; a
commit through this process that writes `api_tokens` or `users` (revoke, deactivate, role
change, logout) clears every entry at once. A lookup that began before such a commit may
not store its (possibly stale) answer afterwards: entries carry the generation they were
read in. Writes made through another worker or replica are seen within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker

from api.security import Principal

# Which tables decide a principal: writing one of them clears the cache on commit.
_TABLES = frozenset({"api_tokens", "users"})
_DIRTY = "equipmon_principals_changed"
# Bounds memory against a flood of distinct valid tokens (they are evicted oldest first).
MAX_ENTRIES = 10_000


class TokenCache:
    """Principals by token digest, each for ``ttl_s`` seconds (0: nothing is kept)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, datetime | None, Principal]] = {}
        self.generation = 0

    def get(self, digest: str, now: datetime) -> Principal | None:
        """The cached principal of a token digest, if fresh and the token not yet expired."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        until, expires_at, principal = entry
        if self._clock() >= until or (expires_at is not None and expires_at <= now):
            self._entries.pop(digest, None)
            return None
        return principal

    def put(
        self, digest: str, principal: Principal, expires_at: datetime | None, generation: int
    ) -> None:
        """Remember a principal read in ``generation`` (dropped if the cache was cleared since)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return  # a revocation committed while this was looked up
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (self._clock() + self.ttl_s, expires_at, principal)

    def clear(self) -> None:
        """Forget every principal (a token or user changed)."""
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def track(self, factory: sessionmaker[Session]) -> None:
        """Clear the cache whenever a session of factory commits a write to tokens or users."""
        event.listen(factory, "after_flush", _after_flush)
        event.listen(factory, "do_orm_execute", _on_execute)
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_rollback", _forget)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_DIRTY, False):
            self.clear()


def _mark(session: Session, table: Any) -> None:
    if getattr(table, "name", None) in _TABLES:
        session.info[_DIRTY] = True


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        _mark(session, getattr(obj, "__table__", None))


def _on_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _mark(state.session, getattr(state.statement, "table", None))


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_DIRTY, None)
