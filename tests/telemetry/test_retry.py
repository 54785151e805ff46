"""The one retry policy: doubling with full jitter, capped, Retry-After a floor."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest

from telemetry.retry import Backoff, log_retry


def test_waits_double_up_to_the_cap_and_jitter_stays_within_them() -> None:
    policy = Backoff(0.5, 10.0, rng=random.Random(1))
    assert [policy.ceiling(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    for failures in range(1, 40):
        waits = [policy.delay(failures) for _ in range(200)]
        assert min(waits) >= 0.25
        assert max(waits) <= policy.ceiling(failures)
    spread = {round(policy.delay(6), 1) for _ in range(200)}
    assert len(spread) > 20  # full jitter: retries of many clients do not line up


def test_retry_after_is_a_floor_and_huge_failure_counts_do_not_overflow() -> None:
    policy = Backoff(0.5, 10.0, rng=random.Random(2))
    assert all(policy.delay(1, retry_after=7.0) >= 7.0 for _ in range(50))
    assert policy.delay(10**9) <= 10.0
    assert Backoff(1.0, 60.0, jitter=False).wait(3) == timedelta(seconds=4)


def test_every_retry_is_logged_in_the_same_words(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        log_retry(logging.getLogger("x"), "InfluxDB write", 3, 2.5, "503 Service Unavailable")
    assert caplog.messages == [
        "InfluxDB write failed (attempt 3, retry in 2.5 s): 503 Service Unavailable"
    ]
