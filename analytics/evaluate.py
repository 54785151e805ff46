"""Offline evaluation on SKAB-style folders: pooled confusion matrix, segments, delays, drift."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.data import read_sensor_csv
from analytics.replay import replay
from analytics.scorer import StreamingScorer

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int_]


@dataclass(frozen=True)
class Report:
    """Evaluation figures (rates as fractions, delays in seconds)."""

    files: int
    tp: int
    fp: int
    fn: int
    tn: int
    f1: float
    far: float
    mar: float
    segments: int
    segments_detected: int
    median_delay_s: float | None
    false_alarm_events_per_hour: float
    drift_false_alarm_events_per_hour: float | None
    drift_time_in_alarm: float | None

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def _segments(labels: IntArray) -> list[tuple[int, int]]:
    """[start, end) index pairs of runs of 1."""
    padded = np.concatenate([[0], labels, [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _false_events(alarm: IntArray, labels: IntArray) -> int:
    """Alarm episodes that start outside any labelled segment."""
    return sum(1 for start, _ in _segments(alarm) if labels[start] == 0)


def _normal_hours(times_s: npt.NDArray[np.float64], labels: IntArray) -> float:
    """Time spent in normal rows, in hours (each row weighs its own sampling step)."""
    steps = np.diff(times_s, append=times_s[-1] + np.median(np.diff(times_s)))
    # Logging gaps would otherwise count as long stretches of normal operation.
    steps = np.minimum(steps, 10 * np.median(np.diff(times_s)))
    return float(steps[labels == 0].sum() / 3600.0)


def _read_labels(path: Path) -> IntArray:
    """Ground truth for evaluation only: read separately, never passed to the scorer."""
    frame = pd.read_csv(path, sep=None, engine="python", usecols=["anomaly"])
    return frame["anomaly"].fillna(0).to_numpy().astype(np.int_)


def evaluate(
    root: Path,
    train_rows: int = 400,
    make_scorer: Callable[[], StreamingScorer] = StreamingScorer,
    drift_train_rows: int = 400,
) -> Report:
    """Evaluate every ``valve1/*.csv`` under ``root`` and the anomaly-free drift file."""
    files = sorted((root / "valve1").glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise FileNotFoundError(f"no valve1/*.csv under {root}")
    tp = fp = fn = tn = 0
    detected = n_segments = false_events = 0
    delays: list[float] = []
    normal_h = 0.0
    for path in files:
        table = read_sensor_csv(path)
        labels = _read_labels(path)
        alarm = replay(table, train_rows, make_scorer()).alarm
        pred, truth = alarm[train_rows:], labels[train_rows:]
        tp += int(np.sum((pred == 1) & (truth == 1)))
        fp += int(np.sum((pred == 1) & (truth == 0)))
        fn += int(np.sum((pred == 0) & (truth == 1)))
        tn += int(np.sum((pred == 0) & (truth == 0)))
        times = table.times_s[train_rows:]
        for start, end in _segments(truth):
            n_segments += 1
            hits = np.flatnonzero(pred[start:end])
            if hits.size:
                detected += 1
                delays.append(float(times[start + hits[0]] - times[start]))
        false_events += _false_events(pred, truth)
        normal_h += _normal_hours(times, truth)
        logger.info("%s: alarm rows %d, labelled rows %d", path.name, pred.sum(), truth.sum())
    drift_rate, drift_share = _drift_check(root, drift_train_rows, make_scorer)
    return Report(
        files=len(files),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        f1=tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0,
        far=fp / (fp + tn) if fp + tn else 0.0,
        mar=fn / (fn + tp) if fn + tp else 0.0,
        segments=n_segments,
        segments_detected=detected,
        median_delay_s=float(np.median(delays)) if delays else None,
        false_alarm_events_per_hour=false_events / normal_h if normal_h else 0.0,
        drift_false_alarm_events_per_hour=drift_rate,
        drift_time_in_alarm=drift_share,
    )


def _drift_check(
    root: Path, train_rows: int, make_scorer: Callable[[], StreamingScorer]
) -> tuple[float | None, float | None]:
    """False-alarm events per hour and share of time in alarm on the anomaly-free file."""
    path = root / "anomaly-free" / "anomaly-free.csv"
    if not path.exists():
        logger.warning("no %s; skipping the drift check", path)
        return None, None
    table = read_sensor_csv(path)
    alarm = replay(table, train_rows, make_scorer()).alarm[train_rows:]
    times = table.times_s[train_rows:]
    normal = np.zeros(len(alarm), dtype=np.int_)
    hours = _normal_hours(times, normal)
    events = _false_events(alarm, normal)
    steps = np.diff(times, append=times[-1])
    share = float(steps[alarm == 1].sum() / max(steps.sum(), 1e-9))
    return events / hours, share


def format_report(report: Report) -> str:
    """Human-readable summary."""
    delay = "n/a" if report.median_delay_s is None else f"{report.median_delay_s:.0f} s"
    lines = [
        f"files: {report.files}   confusion (pooled, scored rows): "
        f"TP={report.tp} FP={report.fp} FN={report.fn} TN={report.tn}",
        f"F1:  {report.f1:.3f}",
        f"FAR: {report.far:.1%}",
        f"MAR: {report.mar:.1%}",
        f"segments detected: {report.segments_detected} of {report.segments}",
        f"median detection delay: {delay}",
        f"false-alarm events per hour of normal operation: "
        f"{report.false_alarm_events_per_hour:.2f}",
    ]
    if report.drift_time_in_alarm is not None:
        lines += [
            f"anomaly-free drift check: {report.drift_false_alarm_events_per_hour:.2f} "
            f"false-alarm events/h, {report.drift_time_in_alarm:.1%} of time in alarm",
        ]
    return "\n".join(lines)
