"""Per-sensor level channel: step faults stay alarmed, nothing latches forever, drift is learned;
the training envelope: slow faults beyond anything seen in training are never learned."""

from __future__ import annotations

import copy
from collections import deque

import numpy as np
import pytest

from analytics.level import SensorLevels, TrainingEnvelope


def noise(n: int, k: int = 3, seed: int = 0, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return 10.0 + rng.normal(0, 0.1, (n, k)), np.arange(n, dtype=np.float64) * dt


def run(model: SensorLevels, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.array([model.update(values[k], times[k]) for k in range(len(times))])


def test_step_is_not_absorbed_within_the_baseline_horizon() -> None:
    values, times = noise(2000)
    values[1000:, 1] += 1.0  # 10 noise sd
    model = SensorLevels().fit(values[:400], times[:400])
    z = run(model, values[400:], times[400:])
    assert np.abs(z[:550]).max() < 6  # before the step (allowing the max of 3 Gaussian-ish z)
    assert (np.abs(z[700:1600, 1]) > 10).all()  # 15 minutes later still far out
    assert np.argmax(model.contributions(z[-1])[0]) == 1


def test_a_persistent_change_is_eventually_relearned() -> None:
    # A frozen baseline leaks at tau * frozen_tau_factor: no alarm can hold forever.
    values, times = noise(12000)
    values[1000:, 0] += 1.0
    model = SensorLevels(baseline_tau_s=300.0, frozen_tau_factor=5.0).fit(values[:400], times[:400])
    z = run(model, values[400:], times[400:])
    assert np.abs(z[-300:, 0]).max() < 3
    assert model.baseline_shift()[0] > 5


def test_wander_longer_than_training_is_learned_as_scale() -> None:
    values, times = noise(9000, k=2, seed=1)
    rng = np.random.default_rng(2)
    # Sensor 0 wanders as a slow bounded random walk, well beyond its 400-row training spread.
    walk = np.zeros(9000)
    for k in range(1, 9000):
        walk[k] = 0.999 * walk[k - 1] + rng.normal(0, 0.02)
    values[:, 0] += walk
    model = SensorLevels().fit(values[:400], times[:400])
    before = np.sqrt(model.var_.copy())
    z = run(model, values[400:], times[400:])
    assert np.sqrt(model.var_[0]) > 1.3 * before[0]
    assert np.sqrt(model.var_[1]) < 1.5 * before[1]
    assert np.mean(np.abs(z[-3000:, 0]) > 5) < 0.05


def test_settings_are_in_seconds_not_rows() -> None:
    fast, t_fast = noise(4000, seed=3, dt=1.0)
    slow, t_slow = fast[::2].copy(), t_fast[::2].copy()
    a = SensorLevels().fit(fast[:800], t_fast[:800])
    b = SensorLevels().fit(slow[:400], t_slow[:400])
    assert a.gaussian_quantile(0.995) == pytest.approx(b.gaussian_quantile(0.995))
    assert SensorLevels().fit(fast[:400], t_fast[:400]).gaussian_quantile(0.995) > 2.8
    # Same step, same time constants: the deviation decays on the same clock at both rates.
    for v in (fast, slow):
        v[len(v) // 2 :, 0] += 1.0
    za = run(a, fast[800:], t_fast[800:])
    zb = run(b, slow[400:], t_slow[400:])
    assert np.sign(za[-1, 0]) == np.sign(zb[-1, 0]) == 1


def test_too_few_training_rows_is_a_clear_error() -> None:
    values, times = noise(30)
    with pytest.raises(ValueError, match="too few"):
        SensorLevels().fit(values, times)


def daily_cycle(days: float, step_s: float = 60.0, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two sensors with a daily cycle (load, ambient) and noise, one row per ``step_s``."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, days * 86400.0, step_s)
    cycle = np.sin(2 * np.pi * times / 86400.0)
    values = np.stack([50 + 10 * cycle, 2 + 0.3 * cycle], axis=1)
    return values + rng.normal(0, [0.5, 0.03], (len(times), 2)), times


def test_envelope_scores_nothing_inside_the_training_range() -> None:
    values, times = daily_cycle(4)
    n = int(np.searchsorted(times, 2 * 86400.0))
    model = TrainingEnvelope().fit(values[:n], times[:n])
    assert model.active_
    z = np.array([model.update(values[k], times[k]) for k in range(n, len(times))])
    assert z.max() < 1.0  # two more days of the same cycles stay inside


def test_envelope_keeps_a_creep_of_days_that_an_adaptive_baseline_learns() -> None:
    values, times = daily_cycle(6)
    n = int(np.searchsorted(times, 2 * 86400.0))
    # Sensor 1 creeps up by 8 daily-cycle amplitudes over four days (a wearing bearing); the
    # creep rate is a fraction of the noise per baseline time constant.
    values[n:, 1] += np.linspace(0.0, 2.4, len(times) - n)
    envelope = TrainingEnvelope().fit(values[:n], times[:n])
    levels = SensorLevels().fit(values[:n], times[:n])
    z_env = np.array([envelope.update(values[k], times[k]) for k in range(n, len(times))])
    z_lvl = run(levels, values[n:], times[n:])
    assert z_env[-1000:, 1].min() > envelope.threshold  # alarmed for the last 16 hours
    assert np.abs(z_env[:, 0]).max() < 1.0  # and only that sensor
    assert np.abs(z_lvl[-1000:, 1]).max() < 5  # the adaptive channel has learned it


def test_envelope_is_idle_after_a_short_training() -> None:
    values, times = noise(2000)
    values[1000:, 0] += 100.0
    model = TrainingEnvelope().fit(values[:400], times[:400])
    assert not model.active_
    assert all(not model.update(values[k], times[k]).any() for k in range(400, 2000))


def test_window_mean_equals_the_mean_of_the_window_rows_across_buffer_moves() -> None:
    # 10 Hz: 200 rows in a 20 s window, so the row buffer both grows and compacts; a gap and
    # missing values (held at the last one) on the way.
    values, times = noise(3000, dt=0.1, seed=4)
    times[1500:] += 30.0
    values[900:950, 2] = np.nan
    model = SensorLevels().fit(values[:800], times[:800])
    held = values.copy()
    for k in range(1, len(held)):
        held[k] = np.where(np.isfinite(held[k]), held[k], held[k - 1])
    for k in range(800, 3000):
        mean = model._mean(values[k], float(times[k]))
        inside = (times[: k + 1] > times[k] - model.window_s) & (times[: k + 1] <= times[k])
        np.testing.assert_array_equal(mean, np.mean(list(held[: k + 1][inside]), axis=0))


def test_a_level_channel_pickled_with_the_old_window_deque_goes_on_identically() -> None:
    values, times = noise(1200, seed=6)
    values[700:, 0] += 1.0
    model = SensorLevels().fit(values[:400], times[:400])
    run(model, values[400:500], times[400:500])
    old = copy.deepcopy(model)
    rows = old.__dict__.pop("_rows")
    row_t = old.__dict__.pop("_row_t")
    lo = old.__dict__.pop("_lo")
    old._win = deque((t, rows[i].copy()) for i, t in enumerate(row_t) if i >= lo)  # type: ignore[attr-defined]
    del old.__dict__["var0_"]
    del old.memory_.__dict__["_open"]
    np.testing.assert_array_equal(
        run(old, values[500:], times[500:]), run(model, values[500:], times[500:])
    )
