"""Relation channel: slow faults that break cross-sensor relations vs healthy common drift."""

from __future__ import annotations

import numpy as np

from analytics.relations import RelationResiduals
from analytics.scorer import StreamingScorer
from tests.analytics.helpers import MACHINE_SENSORS, make_machine_days


def alarm_share(values: np.ndarray, times: np.ndarray, **kwargs: object) -> np.ndarray:
    scorer = StreamingScorer(**kwargs).fit(values[:400], times[:400], MACHINE_SENSORS)  # type: ignore[arg-type]
    return np.array([scorer.update(values[k], times[k]).alarm for k in range(400, len(times))])


def test_bearing_wear_over_days_alarms_but_healthy_common_drift_does_not() -> None:
    # Three days at one row per minute. Healthy: the load wanders as a random walk over days,
    # moving current, flow, vibration and bearing temperature together (16+ load sd).
    healthy, times = make_machine_days(3, seed=1, load_walk=0.1)
    # Wear: vibration and bearing temperature creep up over days with the load unchanged.
    worn, _ = make_machine_days(3, seed=1, wear=8.0)
    hourly = healthy[:4200, 0].reshape(-1, 60).mean(axis=1)
    drift = np.abs(hourly - healthy[:400, 0].mean()) / healthy[:400, 0].std()
    assert drift.max() > 3.0  # hour-long means wander several training sd: real drift
    healthy_alarm = alarm_share(healthy, times)
    worn_alarm = alarm_share(worn, times)
    assert healthy_alarm.mean() < 0.02
    assert not healthy_alarm[-1000:].any()
    assert worn_alarm[-500:].all()
    # Without the relation channel the adaptive level baseline absorbs the slow wear: this is
    # the case the relation channel exists for.
    assert alarm_share(worn, times, relations=False)[-500:].mean() < 0.05


def test_relations_are_only_trusted_when_they_hold_out_of_sample() -> None:
    rng = np.random.default_rng(0)
    independent = rng.normal(size=(400, 4)).cumsum(axis=0)  # shared-looking slow wiggles only
    model = RelationResiduals().fit(np.diff(independent, axis=0), independent[1:])
    assert not model.scored_.any()
    assert np.all(model.score_samples(independent) == 0.0)
    values, _ = make_machine_days(0.3, seed=2)
    related = RelationResiduals().fit(values - values.mean(axis=0), values)
    assert related.scored_[:4].all()
    assert not related.scored_[4]
    # A common-mode move along the learned relation leaves (almost) no residual; one sensor
    # leaving it does.
    centre = np.median(values, axis=0)
    common = centre + 5.0 * np.array([1.0, 2.0, 0.2, 0.5, 0.0])
    broken = centre + np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    scores = related.score_samples(np.vstack([common, broken]))
    assert scores[0] < 9.0 < scores[1]
    assert int(np.argmax(related.contributions(broken.reshape(1, -1))[0])) == 2


def test_the_live_row_score_equals_the_batch_score() -> None:
    healthy, _ = make_machine_days(1, seed=2)
    worn, _ = make_machine_days(1, seed=2, wear=8.0)
    model = RelationResiduals().fit(np.diff(healthy[:400], axis=0), healthy[1:400])
    assert model.scored_.sum() >= 2
    rows = np.vstack([healthy[400:900], worn[-500:]])
    live = np.array([model.score_row(row) for row in rows])
    np.testing.assert_allclose(live, model.score_samples(rows), rtol=1e-12, atol=1e-12)
