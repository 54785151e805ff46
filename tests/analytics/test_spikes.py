"""Isolated single-sample outliers: held for the model, counted, raised as instrument_spikes."""

from __future__ import annotations

from analytics.rules import SPIKES, InstrumentRules, RuleChange
from analytics.settings import RuleSettings
from tests.analytics.helpers import SENSORS, FloatArray, make_correlated_rows


def observe(
    rules: InstrumentRules, values: FloatArray, times: FloatArray, k: int
) -> list[RuleChange]:
    row = dict(zip(SENSORS, values[k].tolist(), strict=True))
    return rules.observe(float(times[k]), row)


def learned(values: FloatArray, times: FloatArray) -> InstrumentRules:
    rules = InstrumentRules(RuleSettings())
    rules.learn(SENSORS, times[:400], values[:400])
    return rules


def test_repeated_spikes_are_held_and_raise_an_instrument_alert() -> None:
    values, times = make_correlated_rows(1200, seed=2)
    spikes = list(range(500, 1100, 60))
    values[spikes, 3] += 40.0  # temperature: 200 noise sd, one sample each
    rules = learned(values, times)
    raised: list[RuleChange] = []
    for k in range(400, 1200):
        changes = observe(rules, values, times, k)
        # The outlier itself is withheld from the model; the next sample is not.
        assert ("temperature" in rules.suspect()) == (k in spikes), k
        raised += [c for c in changes if c.kind == SPIKES]
    assert raised, "three spikes within the hour raise the alert"
    first = raised[0]
    assert first.active
    assert first.sensor == "temperature"
    assert first.time_s < spikes[3] + 30
    assert (SPIKES, "temperature") in rules.active()


def test_a_step_is_accepted_after_one_sample_and_never_counted() -> None:
    values, times = make_correlated_rows(1200, seed=2)
    values[600:, 3] += 40.0  # a real level change persists
    rules = learned(values, times)
    held: list[int] = []
    for k in range(400, 1200):
        observe(rules, values, times, k)
        held += [k] if "temperature" in rules.suspect() else []
    assert held == [600]
    assert rules.spikes.recent("temperature") == 0
    assert rules.active() == []


def test_a_jump_shared_by_correlated_neighbours_is_not_an_outlier() -> None:
    values, times = make_correlated_rows(1200, seed=2)
    values[600, :3] *= 3.0  # flow, pressure and current jump together for one sample
    rules = learned(values, times)
    for k in range(400, 700):
        observe(rules, values, times, k)
        assert not {"flow", "pressure", "current"} & rules.suspect(), k
