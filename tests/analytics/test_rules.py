"""Instrument rules: stale, stuck (vs correlated neighbours), out of range, with on/off delays."""

from __future__ import annotations

import numpy as np

from analytics.rules import (
    ASSET,
    OUT_OF_RANGE,
    STALE,
    STUCK,
    Debounce,
    InstrumentRules,
    RuleChange,
    longest_flat_run,
)
from analytics.settings import RuleSettings
from tests.analytics.helpers import SENSORS, make_correlated_rows

SETTINGS = RuleSettings(
    stale_asset_s=60, stale_sensor_s=60, stuck_min_s=60, on_delay_s=5, off_delay_s=10
)


def learned_rules(n: int = 600, quantum: float | None = None) -> InstrumentRules:
    """Rules learned on n seconds of correlated data (optionally quantised)."""
    values, times = make_correlated_rows(n, seed=3)
    if quantum:
        values = np.round(values / quantum) * quantum
    rules = InstrumentRules(SETTINGS)
    rules.learn(SENSORS, times, values)
    return rules


def feed(
    rules: InstrumentRules, values: np.ndarray, t0: float, skip: str | None = None
) -> list[RuleChange]:
    """Feed rows at 1 s from t0 (leaving out sensor `skip`); every change."""
    changes = []
    for k, row in enumerate(values):
        data = {s: float(v) for s, v in zip(SENSORS, row, strict=True) if s != skip}
        changes.extend(rules.observe(t0 + k, data))
    return changes


def test_debounce_needs_the_condition_to_hold() -> None:
    d = Debounce(on_delay_s=5, off_delay_s=10)
    assert d.update(True, 0) is None
    assert d.update(False, 3) is None  # a blip shorter than the on-delay
    assert d.update(True, 4) is None
    assert d.update(True, 9) is True
    assert d.update(False, 10) is None
    assert d.update(False, 19) is None
    assert d.update(False, 20) is False


def test_longest_flat_run_measures_repeats() -> None:
    times = np.arange(10.0)
    col = np.array([1, 1, 1, 2, 3, 3, 3, 3, 3, 4], dtype=float)
    assert longest_flat_run(times, col, 0.0) == 4.0


def test_normal_data_raises_nothing_even_when_quantised() -> None:
    rules = learned_rules(quantum=0.1)
    values, _ = make_correlated_rows(1800, seed=4)
    assert feed(rules, np.round(values / 0.1) * 0.1, 600) == []
    assert rules.suspect() == set()


def test_a_stuck_sensor_is_raised_and_cleared() -> None:
    rules = learned_rules()
    values, _ = make_correlated_rows(600, seed=5)
    values[:300, 0] = values[0, 0]  # flow repeats one value while pressure/current move
    changes = feed(rules, values, 600)
    raised = [c for c in changes if c.active]
    assert [(c.kind, c.sensor) for c in raised] == [(STUCK, "flow")]
    # Raised once the flat run exceeds max(stuck_min_s, 3 x the baseline's longest run).
    assert 600 + 60 <= raised[0].time_s < 600 + 300
    cleared = [c for c in changes if not c.active]
    assert [(c.kind, c.sensor) for c in cleared] == [(STUCK, "flow")]
    assert cleared[0].time_s >= 600 + 300 + SETTINGS.off_delay_s


def test_everything_flat_is_a_stopped_machine_not_a_stuck_sensor() -> None:
    rules = learned_rules()
    flat = np.tile(make_correlated_rows(1, seed=6)[0], (600, 1))
    assert [c for c in feed(rules, flat, 600) if c.kind == STUCK] == []


def test_a_missing_sensor_is_stale_not_stuck() -> None:
    rules = learned_rules()
    values, _ = make_correlated_rows(300, seed=7)
    changes = feed(rules, values, 600, skip="pressure")
    assert [(c.kind, c.sensor, c.active) for c in changes] == [(STALE, "pressure", True)]
    assert "pressure" in rules.suspect()
    back = feed(rules, values[:30], 900)
    assert [(c.kind, c.sensor, c.active) for c in back] == [(STALE, "pressure", False)]


def test_out_of_range_against_configured_limits() -> None:
    rules = InstrumentRules(SETTINGS)  # works before any baseline is learned
    rules.set_limits({"temperature": (None, 100.0), "flow": (0.0, 50.0)})
    changes = []
    for t in range(20):
        changes += rules.observe(t, {"temperature": 600.0 if t < 12 else 60.0, "flow": 30.0})
    assert "temperature" in rules.suspect()
    assert [(c.kind, c.sensor, c.active, c.time_s) for c in changes] == [
        (OUT_OF_RANGE, "temperature", True, 5.0)
    ]
    assert "600 outside [-inf, 100]" in changes[0].message
    for t in range(20, 40):
        changes += rules.observe(t, {"temperature": 60.0})
    assert changes[-1].active is False
    assert rules.active() == []


def test_a_silent_asset_is_stale_by_the_wall_clock() -> None:
    rules = InstrumentRules(SETTINGS)
    assert rules.check_asset(1000.0, None) == []  # never seen: nothing to say
    assert rules.check_asset(1030.0, 1000.0) == []
    assert rules.check_asset(1060.0, 1000.0) == []  # condition starts, on-delay runs
    raised = rules.check_asset(1065.0, 1000.0)
    assert [(c.kind, c.sensor, c.active) for c in raised] == [(STALE, ASSET, True)]
    assert rules.active() == [(STALE, ASSET)]
    assert ASSET not in rules.suspect()  # the asset is not a sensor of the model
