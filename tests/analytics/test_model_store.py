"""Stored baselines: round trip, deterministic refit, rejection of tampered or foreign files."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from analytics.errors import ModelRejectedError
from analytics.model_store import (
    Baseline,
    ModelStore,
    build_baseline,
    file_stem,
    fit_scorer,
)
from tests.analytics.helpers import SENSORS, make_correlated_rows

KEY = ("plant-a", "pump-1")


def baseline(n: int = 400) -> Baseline:
    values, times = make_correlated_rows(n, seed=11)
    return Baseline(tuple(SENSORS), times + 1.7e9, values)


def test_round_trip_refits_the_same_model(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    base = baseline()
    meta = store.save(KEY, base, threshold_factor=1.25, reason="auto")
    assert meta["rows"] == 400
    assert meta["sensors"] == SENSORS
    assert meta["libraries"]["numpy"] == np.__version__
    found = store.load(KEY)
    assert found is not None
    loaded, meta2 = found
    assert meta2 == json.loads(store.paths(KEY)[1].read_text())
    assert np.array_equal(loaded.values, base.values)
    assert loaded.sensors == base.sensors
    a, b = fit_scorer(base, 1.25), fit_scorer(loaded, 1.25)
    assert a.threshold_ == b.threshold_
    assert fit_scorer(base, 2.0).threshold_ == pytest.approx(2.0 * fit_scorer(base).threshold_)
    rows, _ = make_correlated_rows(200, seed=12)
    for k, row in enumerate(rows):
        da, db = a.update(row, 1.7e9 + 400 + k), b.update(row, 1.7e9 + 400 + k)
        assert (da.score, da.alarm) == (db.score, db.alarm)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_missing_model_is_none(tmp_path: Path) -> None:
    assert ModelStore(tmp_path).load(KEY) is None


def test_tampered_baseline_is_rejected(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(KEY, baseline())
    npz, _ = store.paths(KEY)
    data = bytearray(npz.read_bytes())
    data[-40] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ModelRejectedError, match="sha256"):
        store.load(KEY)


def test_other_format_version_is_rejected(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(KEY, baseline())
    js = store.paths(KEY)[1]
    meta = json.loads(js.read_text())
    meta["format_version"] = 99
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelRejectedError, match="format version 99"):
        store.load(KEY)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(KEY, baseline())
    npz, js = store.paths(KEY)
    buffer = io.BytesIO()
    np.savez(buffer, times_s=np.array([object()], dtype=object), values=np.zeros((1, 4)))
    npz.write_bytes(buffer.getvalue())
    meta = json.loads(js.read_text())
    meta["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()  # even with a matching hash
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelRejectedError, match="bad npz"):
        store.load(KEY)


def test_file_names_cannot_escape_the_folder() -> None:
    stem = file_stem(("../..", "a/b"))
    assert "/" not in stem
    assert ".." not in stem


def test_build_baseline_fills_gaps_and_leaves_out_rejected_points() -> None:
    points = [(k * 10**9, {"a": float(k), "b": float(-k)}) for k in range(100)]
    points[5] = (5 * 10**9, {"a": 5.0})  # b missing: reuses its last value
    base = build_baseline(points, keep=lambda t, _row: t < 80 * 10**9)
    assert base.sensors == ("a", "b")
    assert len(base.times_s) == 80
    assert base.values[5].tolist() == [5.0, -4.0]
    with pytest.raises(ValueError, match="complete rows"):
        build_baseline(points[:10])
