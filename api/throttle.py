"""Login throttling: growing lockouts per user name and per client address, in the database.

Each key (a user name, a client address) may fail a few times for free; every failure after
that locks the key for twice as long as the one before, up to a cap. A locked key is refused
before the password is checked, so the right password does not help during a lockout, and
names that exist and names that do not are throttled alike (nothing tells them apart).
Failures are forgotten once a key has been quiet for the window.

The counts live in the SQL database (table `login_failures`), not in the process: with
several API workers or replicas a guesser meets one throttle, not one per process, and a
restart does not forgive. Each failure locks its keys' rows (`SELECT ... FOR UPDATE` on
PostgreSQL; SQLite writers are serialised anyway), so concurrent failures count exactly.
Times are seconds of an injected clock (the wall clock, shared by every host; tests pass
one they move).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.models import LoginFailure


@dataclass(frozen=True, slots=True)
class Lockout:
    """A key that one more failure locked, and for how long."""

    key: str
    seconds: float
    failures: int


class LoginThrottle:
    """Failure counts and lockouts per key (`user:<name>`, `address:<ip>`)."""

    def __init__(
        self,
        *,
        free_failures: dict[str, int],
        base_delay_s: float,
        max_delay_s: float,
        forget_after_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._free = free_failures  # by key kind: "user", "address"
        self._base = base_delay_s
        self._max = max_delay_s
        self._forget = forget_after_s
        self._clock = clock

    def _forgotten(self, record: LoginFailure, now: float) -> bool:
        return now - record.last_failure > self._forget and now >= record.locked_until

    def retry_after(self, session: Session, keys: list[str]) -> float:
        """Seconds until every key is unlocked (0.0: none is locked)."""
        now = self._clock()
        records = session.scalars(sa.select(LoginFailure).where(LoginFailure.key.in_(keys)))
        waits = [r.locked_until - now for r in records if not self._forgotten(r, now)]
        return max([0.0, *waits])

    def failed(self, session: Session, keys: list[str]) -> list[Lockout]:
        """Count a failure against each key (in session's transaction); the lockouts it
        started."""
        now = self._clock()
        # Quiet, unlocked keys are dropped: the table holds only the last window's failures.
        # SKIP LOCKED: never wait for (or deadlock with) another failure holding a row.
        quiet = (
            sa.select(LoginFailure.key)
            .where(LoginFailure.last_failure < now - self._forget, LoginFailure.locked_until <= now)
            .with_for_update(skip_locked=True)
        )
        session.execute(sa.delete(LoginFailure).where(LoginFailure.key.in_(quiet)))
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            insert(LoginFailure)
            .values(
                [
                    {"key": k, "failures": 0, "last_failure": now, "locked_until": 0.0}
                    for k in sorted(keys)
                ]
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        started = []
        for key in sorted(keys):  # one lock order: concurrent failures cannot deadlock
            record = session.scalars(
                sa.select(LoginFailure)
                .where(LoginFailure.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if self._forgotten(record, now):
                record.failures = 0
                record.locked_until = 0.0
            record.failures += 1
            record.last_failure = now
            over = record.failures - self._free[key.partition(":")[0]]
            if over > 0:
                seconds = min(self._max, self._base * 2 ** min(over - 1, 32))
                record.locked_until = now + seconds
                started.append(Lockout(key, seconds, record.failures))
        return started

    def succeeded(self, session: Session, key: str) -> None:
        """Forget a key's failures (a user who got in); addresses keep theirs."""
        session.execute(sa.delete(LoginFailure).where(LoginFailure.key == key))
