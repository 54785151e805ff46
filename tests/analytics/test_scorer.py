"""Streaming scorer: decisions, explanations, scan scales."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from analytics.scorer import Decision, StreamingScorer
from tests.analytics.helpers import SENSORS, make_correlated_rows


def fitted(values: np.ndarray, times: np.ndarray, **kwargs: object) -> StreamingScorer:
    return StreamingScorer(**kwargs).fit(values[:400], times[:400], SENSORS)  # type: ignore[arg-type]


def test_step_fault_raises_alarm_and_names_the_sensor() -> None:
    values, times = make_correlated_rows(900, seed=3)
    values[600:, 3] += 3.0  # temperature jumps by 15 noise sd
    scorer = fitted(values, times)
    decisions = [scorer.update(values[k], times[k]) for k in range(400, 900)]
    before = [d for d in decisions if d.time_s < 600]
    after = [d for d in decisions if d.time_s >= 640]
    assert sum(d.alarm for d in before) / len(before) < 0.1
    assert all(d.alarm for d in after)
    assert all(d.top_sensors[0][0] == "temperature" for d in after)
    assert after[0].health < 50 < np.median([d.health for d in before])


def test_per_sensor_channel_reports_a_slow_creep_it_learns_as_wander() -> None:
    # Known limit of the default per-sensor channel: its adaptive scale learns a 40-minute creep
    # of an unrelated sensor as wander; it is reported as the largest drift from commissioning.
    values, times = make_correlated_rows(3000, seed=5)
    values[600:, 3] += np.linspace(0, 4.0, 2400)
    scorer = fitted(values, times)
    for k in range(400, 3000):
        scorer.update(values[k], times[k])
    shift = scorer.baseline_shift()
    assert max(shift, key=lambda s: shift[s]) == "temperature"
    assert shift["temperature"] > 20


def test_threshold_is_never_below_the_highest_training_score() -> None:
    # The baseline is healthy by assumption: nothing it did (here a one-off excursion of the
    # temperature inside the training window) may be alarm-worthy later.
    values, times = make_correlated_rows(1400, seed=6)
    values[200:230, 3] += 1.5
    scorer = StreamingScorer().fit(values[:400], times[:400], SENSORS)
    assert scorer.threshold_ >= scorer.level_.training_scores_.max() * 1.5
    values[900:930, 3] += 1.5  # the same excursion again, live
    decisions = [scorer.update(values[k], times[k]) for k in range(400, 1400)]
    assert not any(d.alarm for d in decisions)


def _first_alarm_after(scorer: StreamingScorer, values: np.ndarray, times: np.ndarray) -> float:
    decisions = [scorer.update(values[k], times[k]) for k in range(400, len(times))]
    assert not any(d.alarm for d in decisions if d.time_s < 600)
    first = next(d for d in decisions if d.alarm)
    assert first.top_sensors[0][0] == "temperature"
    return first.time_s


def test_short_scale_sees_a_step_sooner_than_the_long_window_alone() -> None:
    for seed in (3, 4, 7):
        values, times = make_correlated_rows(900, seed=seed)
        values[600:, 3] += 0.8  # temperature steps by 4 noise sd
        long_only = _first_alarm_after(
            fitted(values, times, short_window_fractions=()), values, times
        )
        scanned = _first_alarm_after(fitted(values, times), values, times)
        assert scanned < long_only, seed


def test_each_short_scale_has_its_own_threshold_from_its_training_scores() -> None:
    values, times = make_correlated_rows(4000, seed=2)
    scorer = fitted(values, times)
    [(short, threshold)] = scorer.short_levels_
    assert short.window_s == 10.0
    assert threshold >= short.training_scores_.max() * 1.5
    # Healthy rows alarm no more than with the long window alone.
    plain = fitted(values, times, short_window_fractions=())
    alarms = [
        sum(s.update(values[k], times[k]).alarm for k in range(400, 4000)) for s in (scorer, plain)
    ]
    assert alarms[0] == alarms[1]


def test_short_scale_changes_nothing_at_readings_as_long_as_the_window() -> None:
    values, times = make_correlated_rows(900, seed=3)
    times = times * 60.0  # one-minute readings: both windows hold one sample
    values[600:, 3] += 1.0
    scores = [
        np.array([s.update(values[k], times[k]).score for k in range(400, 900)])
        for s in (fitted(values, times), fitted(values, times, short_window_fractions=()))
    ]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-12)


def test_decisions_explain_lazily_and_equal_the_decision_built_with_the_same_fields() -> None:
    values, times = make_correlated_rows(900, seed=3)
    values[600:, 3] += 3.0
    scorer = fitted(values, times)
    decisions = [scorer.update(values[k], times[k]) for k in range(400, 900)]
    alarm = next(d for d in decisions if d.alarm)
    assert "top_sensors" not in vars(alarm)  # not worked out until read
    fields = {f.name: getattr(alarm, f.name) for f in dataclasses.fields(Decision)}
    eager = Decision(**fields)
    assert eager.top_sensors[0][0] == "temperature"
    assert alarm == eager
    assert eager == alarm
    assert hash(alarm) == hash(eager)
    assert alarm != dataclasses.replace(eager, score=alarm.score + 1)
    assert dataclasses.replace(alarm, score=1.0) == dataclasses.replace(eager, score=1.0)
    assert copy.deepcopy(alarm) == pickle.loads(pickle.dumps(alarm)) == eager
    with pytest.raises(dataclasses.FrozenInstanceError):
        alarm.score = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = alarm.explanation  # type: ignore[attr-defined]
