"""Alarm state machine: on-delay, off-delay, hysteresis, threshold and health."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analytics.alarm import (
    AlarmPolicy,
    AlarmState,
    AlarmStateMachine,
    baseline_threshold,
    health_score,
)


def run(machine: AlarmStateMachine, scores: list[float], step_s: float = 1.0) -> list[AlarmState]:
    return [machine.update(s, k * step_s) for k, s in enumerate(scores)]


def test_on_delay_needs_the_condition_to_persist() -> None:
    machine = AlarmStateMachine(1.0, AlarmPolicy(on_delay_s=5, off_delay_s=0))
    states = run(machine, [2.0] * 4 + [0.0] + [2.0] * 6)
    assert AlarmState.ALARM not in states[:10]
    assert states[4] == AlarmState.NORMAL  # one low row resets the on-delay
    assert states[10] == AlarmState.ALARM  # 5 s after the second rise (t=5 -> t=10)


def test_off_delay_holds_the_alarm_then_clears() -> None:
    machine = AlarmStateMachine(1.0, AlarmPolicy(on_delay_s=0, off_delay_s=10, clear_ratio=0.5))
    states = run(machine, [2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert states[0] == AlarmState.ALARM
    assert all(s == AlarmState.CLEARING for s in states[1:11])
    assert states[11] == AlarmState.NORMAL


def test_hysteresis_keeps_alarm_between_clear_level_and_threshold() -> None:
    machine = AlarmStateMachine(1.0, AlarmPolicy(on_delay_s=0, off_delay_s=0, clear_ratio=0.5))
    states = run(machine, [2.0, 0.8, 0.7, 0.6, 0.4])
    assert states[:4] == [AlarmState.ALARM] * 4  # below threshold but above the clear level
    assert states[4] == AlarmState.NORMAL


def test_clearing_returns_to_alarm_when_the_score_rises_again() -> None:
    machine = AlarmStateMachine(1.0, AlarmPolicy(on_delay_s=0, off_delay_s=30, clear_ratio=0.5))
    states = run(machine, [2.0, 0.1, 0.1, 0.9, 0.1])
    assert states == [
        AlarmState.ALARM,
        AlarmState.CLEARING,
        AlarmState.CLEARING,
        AlarmState.ALARM,
        AlarmState.CLEARING,
    ]
    assert machine.alarm


def test_delays_use_time_not_row_count() -> None:
    policy = AlarmPolicy(on_delay_s=10, off_delay_s=0)
    slow = AlarmStateMachine(1.0, policy)
    assert run(slow, [2.0, 2.0, 2.0], step_s=5.0)[-1] == AlarmState.ALARM
    fast = AlarmStateMachine(1.0, policy)
    assert run(fast, [2.0, 2.0, 2.0], step_s=1.0)[-1] == AlarmState.PENDING


def test_nan_score_counts_as_high() -> None:
    machine = AlarmStateMachine(1.0, AlarmPolicy(on_delay_s=0))
    assert machine.update(float("nan"), 0.0) == AlarmState.ALARM


def test_threshold_is_a_quantile_times_the_margin() -> None:
    scores = np.arange(101, dtype=float)
    policy = AlarmPolicy(threshold_quantile=0.9, threshold_margin=2.0)
    assert baseline_threshold(scores, policy) == pytest.approx(180.0)


def test_health_is_100_at_zero_and_50_at_threshold() -> None:
    assert health_score(0.0, 4.0) == 100.0
    assert health_score(4.0, 4.0) == pytest.approx(50.0)
    assert health_score(8.0, 4.0) == pytest.approx(25.0)
    assert health_score(float("inf"), 4.0) == 0.0


def test_policy_validation_names_the_option() -> None:
    with pytest.raises(ValueError, match="clear_ratio"):
        AlarmPolicy(clear_ratio=0.0)


def test_severity_weighted_off_delay_holds_near_the_clear_level_only() -> None:
    policy = AlarmPolicy(on_delay_s=0, off_delay_s=10, clear_ratio=0.5, off_evidence_power=2)
    # Just under the clear level (weight (0.5 / 0.45)^2 = 1.23): nearly the full off-delay
    # (cleared 9 s after entering CLEARING at t=1, against 10 s unweighted).
    states = run(AlarmStateMachine(1.0, policy), [2.0] + [0.45] * 10)
    assert states[9] == AlarmState.CLEARING
    assert states[10] == AlarmState.NORMAL
    # Gone (score 0): cleared at the next sample, never at the same one.
    states = run(AlarmStateMachine(1.0, policy), [2.0, 0.0, 0.0])
    assert states == [AlarmState.ALARM, AlarmState.CLEARING, AlarmState.NORMAL]
    # A score that rises back over the clear level still returns to ALARM.
    states = run(AlarmStateMachine(1.0, policy), [2.0, 0.45, 0.6, 0.45])
    assert states[2] == AlarmState.ALARM
    assert states[3] == AlarmState.CLEARING


def test_weighted_off_delay_changes_nothing_when_samples_are_longer_than_it() -> None:
    # Faults of several lengths, each ending in a fall to a different depth under the clear
    # level (0.7): just under it, half way, gone.
    rng = np.random.default_rng(3)
    scores: list[float] = []
    for _ in range(30):
        scores += [2.0] * int(rng.integers(1, 12))
        scores += [float(rng.choice([0.65, 0.35, 0.0]))] * int(rng.integers(1, 60))
    plain = AlarmPolicy(on_delay_s=5, off_delay_s=30)
    weighted = replace(plain, off_evidence_power=2)
    for step_s in (30.0, 60.0):
        a = run(AlarmStateMachine(1.0, plain), scores, step_s)
        b = run(AlarmStateMachine(1.0, weighted), scores, step_s)
        assert a == b
    # At 1 s they differ: the weighted one clears sooner, and it never raises sooner.
    a = run(AlarmStateMachine(1.0, plain), scores)
    b = run(AlarmStateMachine(1.0, weighted), scores)
    assert a != b
    for before, after in zip(a, b, strict=True):
        if after in (AlarmState.ALARM, AlarmState.CLEARING):
            assert before in (AlarmState.ALARM, AlarmState.CLEARING)


def test_weighted_off_delay_still_suppresses_chatter_around_the_clear_level() -> None:
    # After a raise, the score hovers around the clear level (0.7): 12 s just below it, 2 s
    # just above, over and over. Neither policy may return to normal (that would be chatter);
    # a plain 10 s off-delay, the other way to clear sooner, does.
    scores = [2.0] * 6 + ([0.6] * 12 + [0.75] * 2) * 20
    plain = AlarmPolicy(on_delay_s=5, off_delay_s=30)
    for policy in (plain, replace(plain, off_evidence_power=2)):
        states = run(AlarmStateMachine(1.0, policy), scores)
        assert AlarmState.NORMAL not in states[6:]
    states = run(AlarmStateMachine(1.0, replace(plain, off_delay_s=10)), scores)
    assert AlarmState.NORMAL in states[6:]


def test_evidence_power_validation_names_the_option() -> None:
    with pytest.raises(ValueError, match="off_evidence_power"):
        AlarmPolicy(off_evidence_power=-1.0)
