"""Machine stops: an operating state, not an equipment anomaly; nothing learned while stopped."""

from __future__ import annotations

import numpy as np

from analytics.running import RunningState
from analytics.scorer import Decision, StreamingScorer
from tests.analytics.helpers import SENSORS, FloatArray, make_correlated_rows

FLOW, CURRENT = SENSORS.index("flow"), SENSORS.index("current")


def stopped_rows(stop: slice, cols: tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
    """1,500 rows whose ``cols`` fall to about zero (noise only) during ``stop``."""
    values, times = make_correlated_rows(1500, seed=4)
    rng = np.random.default_rng(9)
    for j in cols:
        values[stop, j] = np.abs(rng.normal(0, 0.02, stop.stop - stop.start))
    return values, times


def decisions(values: FloatArray, times: FloatArray, **kwargs: object) -> list[Decision]:
    scorer = StreamingScorer(**kwargs).fit(values[:400], times[:400], SENSORS)  # type: ignore[arg-type]
    return [scorer.update(values[k], times[k]) for k in range(400, len(times))]


def test_a_stop_is_reported_as_stopped_and_raises_no_alarm() -> None:
    values, times = stopped_rows(slice(700, 1000), (FLOW, CURRENT))
    out = decisions(values, times)
    states = {d.running for d in out}
    assert states == {"running", "stopped", "restarting"}
    assert all(d.running == "stopped" for d in out[310:590])
    assert not any(d.alarm for d in out)
    assert out[-1].running == "running"


def test_the_same_stop_alarms_without_the_running_state() -> None:
    # The control: what the scorer did before it knew about stops.
    values, times = stopped_rows(slice(700, 1000), (FLOW, CURRENT))
    out = decisions(values, times, running=RunningState(off_fraction=0.0))
    assert any(d.alarm for d in out)
    assert {d.running for d in out} == {"running"}


def test_one_indicator_falling_alone_is_a_fault_not_a_stop() -> None:
    # Flow gone while the motor still draws current: a blocked line, not an operator's stop.
    values, times = stopped_rows(slice(700, 1000), (FLOW,))
    out = decisions(values, times)
    assert {d.running for d in out} == {"running"}
    assert any(d.alarm and d.top_sensors[0][0] == "flow" for d in out)


def test_indicators_are_chosen_by_name_and_running_level() -> None:
    values, _ = make_correlated_rows(400, seed=1)
    state = RunningState().fit(values, SENSORS)
    assert state.indicators_ == ("flow", "current")
    # An asset without any running indicator is never judged stopped.
    none = RunningState().fit(values[:, [1, 3]], ["pressure", "temperature"])
    assert not none.update(np.zeros(2), 0.0)
