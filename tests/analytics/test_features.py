"""Causal features: no look-ahead, time-aware, streaming equals batch."""

from __future__ import annotations

import numpy as np

from analytics.features import CausalFeatures
from tests.analytics.helpers import make_correlated_rows


def test_changing_a_future_row_leaves_past_features_unchanged() -> None:
    values, times = make_correlated_rows(300)
    before = CausalFeatures(relations=True).transform(values, times)
    changed = values.copy()
    changed[200:] += 100.0
    after = CausalFeatures(relations=True).transform(changed, times)
    np.testing.assert_array_equal(before[:200], after[:200])
    assert not np.allclose(before[200:], after[200:])


def test_streaming_updates_equal_batch_transform() -> None:
    values, times = make_correlated_rows(120)
    batch = CausalFeatures().transform(values, times)
    stream = CausalFeatures()
    rows = np.vstack([stream.update(values[k], times[k]) for k in range(len(times))])
    np.testing.assert_allclose(rows, batch)


def test_time_constants_are_in_seconds_not_rows() -> None:
    # A step seen at 1 Hz and at 0.2 Hz reaches the same level after the same elapsed time.
    fast_t = np.arange(0, 61, 1.0)
    slow_t = np.arange(0, 61, 5.0)
    fast = CausalFeatures().transform(np.where(fast_t[:, None] > 0, 1.0, 0.0), fast_t)
    slow = CausalFeatures().transform(np.where(slow_t[:, None] > 0, 1.0, 0.0), slow_t)
    assert abs(fast[-1, 0] - slow[-1, 0]) < 1e-9


def test_missing_value_does_not_move_the_level() -> None:
    values, times = make_correlated_rows(50)
    features = CausalFeatures()
    features.transform(values[:49], times[:49])
    level_before = features.update(values[48], times[48])[0]
    row = values[49].copy()
    row[0] = np.nan
    assert features.update(row, times[49])[0] == level_before


def test_layout_names_match_the_feature_columns() -> None:
    features = CausalFeatures(relations=True)
    names = features.feature_names(["a", "b", "c"])
    assert len(names) == 3 * 3 + 3
    assert names[0] == "a:level"
    assert "a~c:corr" in names


def test_levels_only_updates_give_the_levels_of_full_updates() -> None:
    values, times = make_correlated_rows(300)
    values[100:110, 1] = np.nan
    full, levels_only = CausalFeatures(), CausalFeatures()
    for k in range(len(times)):
        row = full.update(values[k], times[k])
        np.testing.assert_array_equal(levels_only.update_levels(values[k], times[k]), row[0::3])
