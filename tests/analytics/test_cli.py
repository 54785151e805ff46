"""Replay and evaluate command lines, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main
from tests.analytics.helpers import make_correlated_rows, write_csv

DATASETS = Path("/work/shared/datasets")
SKAB = DATASETS / "skab"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sep", [";", ","])
def test_replay_synthetic_csv(tmp_path: Path, sep: str) -> None:
    values, _ = make_correlated_rows(700, seed=1)
    values[500:, 0] += 10.0
    src = tmp_path / "in.csv"
    stamps = write_csv(str(src), values, sep=sep)
    out = tmp_path / "out.csv"
    assert main(["replay", str(src), "--train-rows", "300", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "datetime;anomaly;score"
    result = pd.read_csv(out, sep=";", dtype={"datetime": str})
    assert result["datetime"].tolist() == stamps
    assert set(result["anomaly"].unique()) <= {0, 1}
    assert (result["anomaly"][:300] == 0).all()
    assert result["anomaly"][530:].all()
    assert result["anomaly"][300:480].mean() < 0.1


def test_replay_never_reads_label_columns(tmp_path: Path) -> None:
    values, _ = make_correlated_rows(500, seed=2)
    src = tmp_path / "in.csv"
    write_csv(str(src), values)
    text = src.read_text(encoding="utf-8").replace(";0.0;0.0\n", ";oops;1e99\n")
    src.write_text(text, encoding="utf-8")
    clean = tmp_path / "clean.csv"
    write_csv(str(clean), values, labels=False)
    outs = []
    for name, path in (("a", src), ("b", clean)):
        out = tmp_path / f"{name}.out"
        assert main(["replay", str(path), "--train-rows", "300", "--out", str(out)]) == 0
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1]


def test_replay_custom_time_column_and_errors(tmp_path: Path) -> None:
    values, _ = make_correlated_rows(400, seed=4)
    src = tmp_path / "in.csv"
    write_csv(str(src), values, labels=False)
    src.write_text(src.read_text(encoding="utf-8").replace("datetime", "ts", 1), encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["replay", str(src), "--train-rows", "300", "--out", str(out)]) == 2
    args = ["replay", str(src), "--train-rows", "300", "--out", str(out), "--time-col", "ts"]
    assert main(args) == 0
    assert out.read_text(encoding="utf-8").startswith("datetime;anomaly;score\n")


def test_replay_real_skab_file_as_a_module(tmp_path: Path) -> None:
    src = SKAB / "valve1" / "3.csv"
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "analytics", "replay", str(src), "--train-rows", "400"]
    subprocess.run([*cmd, "--out", str(out)], check=True, cwd=REPO)
    result = pd.read_csv(out, sep=";", dtype={"datetime": str})
    truth = pd.read_csv(src, sep=";", dtype={"datetime": str})
    assert list(result.columns) == ["datetime", "anomaly", "score"]
    assert result["datetime"].tolist() == truth["datetime"].tolist()
    assert (result["anomaly"][:400] == 0).all()
    inside = result["anomaly"][truth["anomaly"] == 1]
    assert inside.mean() > 0.5
    assert np.isfinite(result["score"]).all()


def test_evaluate_reports_every_visible_data_set_better_than_always_alarm() -> None:
    # One run of ``evaluate --json`` over every visible data set (about 25 s of CPU), so one
    # test: under pytest-xdist a shared module fixture would be rebuilt on every worker.
    out = subprocess.run(
        [sys.executable, "-m", "analytics", "evaluate", str(DATASETS), "--json"],
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    folds = {str(row["fold"]): row for row in json.loads(out)}
    assert set(folds) == {
        "skab/valve1",
        "skab/valve2",
        "skab/anomaly-free",
        "nab/ambient_temperature_system_failure",
    }
    assert folds["skab/valve1"]["kind"] == "labelled"
    assert folds["skab/anomaly-free"]["kind"] == "normal"
    assert folds["nab/ambient_temperature_system_failure"]["kind"] == "nab"
    # Behaviour, not one data set's tuned figure: on every labelled fold the detector finds
    # the faults and is better than an alarm that is always on, which scores F1 ~0.7 on SKAB.
    for name in ("skab/valve1", "skab/valve2"):
        row = folds[name]
        assert row["segments_detected"] == row["segments"], name
        assert float(row["f1"]) > float(row["always_f1"]), name
    # A healthy recording is quiet most of the time.
    assert float(folds["skab/anomaly-free"]["time_in_alarm"]) < 0.05


def test_evaluate_table_names_each_fold_and_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A small SKAB-style folder and an anomaly-free one, made here: the human table.
    for folder, labels in (("rig/faults", True), ("rig/healthy", False)):
        (tmp_path / folder).mkdir(parents=True)
        values, _ = make_correlated_rows(700, seed=5)
        if labels:
            values[500:620, 0] += 10.0
        write_csv(str(tmp_path / folder / "0.csv"), values, labels=labels)
    assert main(["evaluate", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "rig/faults" in table
    assert "rig/healthy" in table
    assert "FAR 100%" in table  # the always-alarm reference of the labelled fold
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2


def test_replay_sorts_out_of_order_rows_or_refuses_with_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # NAB-style file (timestamp,value) with one row out of order and one repeated time.
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2026-01-01", periods=300, freq="h")
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": 0.0})
    frame["value"] = 20 + rng.normal(0, 0.5, 300)
    rows = frame.to_dict("records")
    rows[100], rows[101] = rows[101], rows[100]
    rows.insert(200, {"timestamp": rows[199]["timestamp"], "value": 99.0})
    src = tmp_path / "nab.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    with caplog.at_level("WARNING"):
        assert main(["replay", str(src), "--train-rows", "100", "--out", str(out)]) == 0
    assert "1 rows out of time order, 1 rows with a repeated time" in caplog.text
    result = pd.read_csv(out, sep=";", dtype={"datetime": str})
    assert len(result) == 300
    assert result["datetime"].is_monotonic_increasing
    strict = ["replay", str(src), "--train-rows", "100", "--out", str(out), "--strict"]
    assert main(strict) == 2
