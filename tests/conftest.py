"""Shared pytest configuration: real-service fixtures, plain typed factories, lanes and ordering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.sql", "tests.fixtures.factories"]

# The markers of the slow lane: `scripts/test --quick` leaves these out, `scripts/test` runs them
# after the quick lane (DESIGN.md, "Time in tests is compressed").
SLOW_LANE = ("slow", "stack", "e2e", "browser")
SLOW_LANE_EXPR = " or ".join(SLOW_LANE)

# Tests hash a few passwords each (a user per role, then its login). At the production scrypt
# cost (n=2**14, 16 MiB) one hash takes 0.1-0.5 s on this machine, so the API tests spent more
# time in scrypt than in the API. A test cost of n=2**10 keeps the real algorithm, format and
# verification (the parameters are stored in each hash) at ~1/16 of the time, as Django's test
# settings do with their password hasher. The production cost itself is not a test's business.
TEST_SCRYPT_N = 2**10


def in_slow_lane(item: pytest.Item) -> bool:
    """Whether a collected test belongs to the slow lane."""
    return any(item.get_closest_marker(name) for name in SLOW_LANE)


# Analytics reaches SQL only through the API's HTTP interface, so its tests say nothing more on
# PostgreSQL than on SQLite.
SQL_AGNOSTIC_PATHS = ("tests/analytics/",)


def runs_on_one_database(item: pytest.Item) -> bool:
    """Whether the test's subject does not depend on the SQL backend (marker `sql_agnostic`, or
    a folder of SQL_AGNOSTIC_PATHS): it runs on SQLite only."""
    if item.get_closest_marker("sql_agnostic"):
        return True
    return item.nodeid.startswith(SQL_AGNOSTIC_PATHS)


def _postgresql_copy(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("database_url") == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL copy of SQL-agnostic tests; run the slow lane's tests first.

    The database fixtures run every test that needs SQL on SQLite and on PostgreSQL. Where the
    subject is HTTP (roles, cookies, validation of pushed readings) or analytics, the second
    copy doubled the time and tested nothing new; such tests are deselected (counted in
    pytest's summary), never skipped silently.

    Under pytest-xdist (scripts/test: `--dist load --maxschedchunk 1`) each worker is handed
    the next pending test one at a time, so the minute-long ones start at once on separate
    workers and the many short ones fill in around them, instead of one long test starting
    last and holding the whole run.
    """
    deselected = [item for item in items if runs_on_one_database(item) and _postgresql_copy(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        gone = {id(item) for item in deselected}
        items[:] = [item for item in items if id(item) not in gone]
    items.sort(key=lambda item: not in_slow_lane(item))


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    from api import security

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_SCRYPT_N", TEST_SCRYPT_N)
        yield
