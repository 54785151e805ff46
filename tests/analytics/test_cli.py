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
from analytics.evaluate import Report, evaluate
from tests.analytics.helpers import make_correlated_rows, write_csv

SKAB = Path("/work/shared/datasets/skab")
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


def test_evaluate_json_reports_all_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(SKAB), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Regression floor at the figures measured when this was written (docs/analytics.md).
    assert report["segments"] == 16
    assert report["segments_detected"] >= 15
    assert report["f1"] >= 0.85
    assert report["far"] <= 0.20
    assert report["median_delay_s"] < 45
    assert report["drift_time_in_alarm"] is not None


@pytest.fixture(scope="module")
def skab_report() -> Report:
    """One evaluation of the frozen defaults shared by the acceptance checks (about 10 s)."""
    return evaluate(SKAB)


def test_evaluate_meets_the_met_acceptance_targets(skab_report: Report) -> None:
    assert skab_report.segments_detected >= 15
    assert skab_report.drift_false_alarm_events_per_hour is not None
    assert skab_report.drift_false_alarm_events_per_hour < 2


def test_evaluate_f1_and_far_targets(skab_report: Report) -> None:
    assert skab_report.f1 >= 0.80
    assert skab_report.far <= 0.13


def test_evaluate_detection_delay_target(skab_report: Report) -> None:
    assert skab_report.median_delay_s is not None
    assert skab_report.median_delay_s < 30


def test_evaluate_drift_time_in_alarm_target(skab_report: Report) -> None:
    assert skab_report.drift_time_in_alarm is not None
    assert skab_report.drift_time_in_alarm < 0.10
