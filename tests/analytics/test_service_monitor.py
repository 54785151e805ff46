"""AssetMonitor: instrument rules beside the model, and model alarms blamed on doubtful sensors."""

from __future__ import annotations

import numpy as np

from analytics.model import AssetModel
from analytics.model_store import Baseline, fit_scorer
from analytics.monitor import AssetMonitor, FeedResult, Points
from analytics.rules import InstrumentRules
from analytics.settings import RuleSettings
from analytics.source import AssetKey, AssetWindow
from tests.analytics.helpers import SENSORS, make_correlated_rows

KEY = ("plant-a", "pump-1")
RULES = RuleSettings(stale_sensor_s=60, on_delay_s=5, off_delay_s=10)


def fitted_monitor() -> tuple[AssetMonitor, np.ndarray]:
    """A monitor fitted on 400 s of normal rows, and 400 more normal rows to stream."""
    values, times = make_correlated_rows(800, seed=9)
    monitor = AssetMonitor(KEY, 400, InstrumentRules(RULES))
    base = Baseline(tuple(SENSORS), times[:400], values[:400])
    monitor.install(base, fit_scorer(base), fitted_at_s=400)
    return monitor, values[400:]


def window(values: np.ndarray, t0: int, drop: str | None = None) -> AssetWindow:
    """Rows at 1 s from t0 (NaN for the dropped sensor)."""
    vals = values.copy()
    if drop is not None:
        vals[:, SENSORS.index(drop)] = np.nan
    times = (t0 + np.arange(len(vals))) * 10**9
    return AssetWindow(times.astype(np.int64), tuple(SENSORS), vals)


def no_fit(_key: AssetKey, _points: Points) -> tuple[Baseline, AssetModel]:
    """The fitter of a monitor that must not fit."""
    raise AssertionError("a fitted monitor does not fit again")


def kinds(result: FeedResult) -> list[tuple[str, str, str]]:
    """(kind, failure_mode, state) of the posts."""
    return [(p["kind"], p["failure_mode"], p["state"]) for p in result.posts]


def test_out_of_range_values_never_reach_the_model() -> None:
    monitor, rows = fitted_monitor()
    monitor.rules.set_limits({"temperature": (0.0, 100.0)})
    rows[50:150, SENSORS.index("temperature")] = 600.0  # a wrong scaling, for 100 s
    result = monitor.feed(window(rows[:200], 400), no_fit)
    assert kinds(result) == [
        ("instrument_out_of_range", "temperature", "active"),
        ("instrument_out_of_range", "temperature", "normal"),
    ]
    assert not monitor.model_alarm


def test_an_alarm_led_by_a_sensor_that_turns_out_doubtful_is_reclassified() -> None:
    monitor, rows = fitted_monitor()
    rows[:, SENSORS.index("temperature")] += 5.0  # +25 noise sd, within any limit
    first = monitor.feed(window(rows[:60], 400), no_fit)
    assert kinds(first) == [("equipment_anomaly", "anomaly", "active")]
    assert first.posts[0]["contributors"][0]["sensor"] == "temperature"
    # The sensor then goes silent: its held value keeps the model alarmed, but it is doubtful.
    later = monitor.feed(window(rows[60:200], 460, drop="temperature"), no_fit)
    assert kinds(later) == [
        ("equipment_anomaly", "anomaly", "normal"),
        ("instrument_stale", "temperature", "active"),
    ]
    assert "doubtful sensors (temperature)" in later.posts[0]["message"]
    assert later.reclassified == 1
    assert monitor.model_alarm
    assert not monitor.alarm
    assert monitor.status(0, 400)["state"] == "instrument"


def test_a_stopped_asset_is_normal_and_says_stopped_without_any_post() -> None:
    monitor, rows = fitted_monitor()
    for name in ("flow", "current"):  # the running indicators fall to zero together
        rows[50:250, SENSORS.index(name)] = 0.0
    result = monitor.feed(window(rows[:150], 400), no_fit)
    assert result.posts == []
    status = monitor.status(0, 400)
    assert status["state"] == "normal"
    assert status["message"] == "stopped"
