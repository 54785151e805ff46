"""The leave-one-data-set-out table: every visible data set scored with the frozen defaults.

Each fold is one data set the defaults must hold on without being tuned to it: a folder of
labelled SKAB-style files (pooled confusion, F1 / FAR as SKAB), an anomaly-free recording (false
alarms per hour, time in alarm), or a NAB-style series with labelled windows (NAB's normalised
score). Beside each fold the always-alarm and never-alarm references show what the figures mean
(on SKAB an always-on alarm already reaches F1 ~0.7).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics import nab
from analytics.data import SensorTable, read_sensor_csv
from analytics.replay import replay
from analytics.scorer import StreamingScorer
from telemetry.progress import progress

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int_]
# NAB's probationary period: 15 % of the rows, at most 750.
NAB_PROBATION_FRACTION = 0.15
NAB_PROBATION_MAX = 750


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


@dataclass(frozen=True)
class FoldResult:
    """Figures of one fold (rates as fractions, delays in seconds; None = not applicable)."""

    fold: str
    kind: str  # "labelled", "normal" or "nab"
    files: int
    f1: float | None = None
    far: float | None = None
    segments: int | None = None
    segments_detected: int | None = None
    median_delay_s: float | None = None
    false_events_per_h: float | None = None
    time_in_alarm: float | None = None
    nab_score: float | None = None
    # References: an alarm always on, and never on.
    always_f1: float | None = None
    always_nab: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def discover(root: Path) -> Iterator[tuple[str, str, list[Path]]]:
    """(fold name, kind, files) for every data set found under ``root``.

    SKAB-style folders (CSV files with an ``anomaly`` column) are labelled folds; a folder whose
    CSVs have none is a normal fold; every ``*.labels.json`` with its CSV is a NAB fold.
    """
    for folder in sorted({p.parent for p in root.rglob("*.csv")}):
        files = sorted(folder.glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
        if any(Path(str(f)[: -len(".csv")] + ".labels.json").exists() for f in files):
            continue
        name = str(folder.relative_to(root)) if folder != root else folder.name
        labelled = "anomaly" in pd.read_csv(files[0], sep=None, engine="python", nrows=0).columns
        yield name, "labelled" if labelled else "normal", files
    for labels in sorted(root.rglob("*.labels.json")):
        csv = labels.with_name(labels.name[: -len(".labels.json")] + ".csv")
        if csv.exists():
            yield str(csv.relative_to(root).with_suffix("")), "nab", [csv]


def run_fold(
    name: str,
    kind: str,
    files: Sequence[Path],
    make_scorer: Callable[[], StreamingScorer] = StreamingScorer,
    train_rows: int = 400,
) -> FoldResult:
    """Score one fold with fresh scorers from ``make_scorer``."""
    if kind == "nab":
        return _nab_fold(name, files[0], make_scorer)
    if kind == "normal":
        return _normal_fold(name, files, make_scorer, train_rows)
    return _labelled_fold(name, files, make_scorer, train_rows)


def _labelled_fold(
    name: str, files: Sequence[Path], make: Callable[[], StreamingScorer], train_rows: int
) -> FoldResult:
    tp = fp = fn = tn = detected = segments = events = 0
    delays: list[float] = []
    normal_h = alarm_s = total_s = 0.0
    for path in progress(files, f"{name}"):
        table = read_sensor_csv(path)
        labels = _read_labels(path)
        pred = replay(table, train_rows, make()).alarm[train_rows:]
        truth = labels[train_rows:]
        times = table.times_s[train_rows:]
        tp += int(np.sum((pred == 1) & (truth == 1)))
        fp += int(np.sum((pred == 1) & (truth == 0)))
        fn += int(np.sum((pred == 0) & (truth == 1)))
        tn += int(np.sum((pred == 0) & (truth == 0)))
        for start, end in _segments(truth):
            segments += 1
            hits = np.flatnonzero(pred[start:end])
            if hits.size:
                detected += 1
                delays.append(float(times[start + hits[0]] - times[start]))
        events += _false_events(pred, truth)
        normal_h += _normal_hours(times, truth)
        steps = _steps(times)
        alarm_s += float(steps[(pred == 1) & (truth == 0)].sum())
        total_s += float(steps[truth == 0].sum())
    positives = tp + fn
    return FoldResult(
        fold=name,
        kind="labelled",
        files=len(files),
        f1=_f1(tp, fp, fn),
        far=fp / (fp + tn) if fp + tn else 0.0,
        segments=segments,
        segments_detected=detected,
        median_delay_s=float(np.median(delays)) if delays else None,
        false_events_per_h=events / normal_h if normal_h else 0.0,
        time_in_alarm=alarm_s / total_s if total_s else 0.0,
        always_f1=_f1(positives, fp + tn, 0),
    )


def _normal_fold(
    name: str, files: Sequence[Path], make: Callable[[], StreamingScorer], train_rows: int
) -> FoldResult:
    events = 0
    hours = alarm_s = total_s = 0.0
    for path in progress(files, f"{name}"):
        table = read_sensor_csv(path)
        alarm = replay(table, train_rows, make()).alarm[train_rows:]
        times = table.times_s[train_rows:]
        normal = np.zeros(len(alarm), dtype=np.int_)
        events += _false_events(alarm, normal)
        hours += _normal_hours(times, normal)
        steps = _steps(times)
        alarm_s += float(steps[alarm == 1].sum())
        total_s += float(steps.sum())
    return FoldResult(
        fold=name,
        kind="normal",
        files=len(files),
        false_events_per_h=events / hours if hours else 0.0,
        time_in_alarm=alarm_s / total_s if total_s else 0.0,
    )


def _nab_fold(name: str, path: Path, make: Callable[[], StreamingScorer]) -> FoldResult:
    table = read_sensor_csv(path, time_col="timestamp")
    epoch = _epoch_seconds(table)
    windows = nab.read_windows(path.with_name(path.stem + ".labels.json"))
    probation = min(NAB_PROBATION_MAX, int(NAB_PROBATION_FRACTION * len(epoch)))
    alarm = replay(table, probation, make()).alarm
    result = nab.score(epoch, alarm, windows, probation)
    always = np.zeros(len(alarm), dtype=np.int_)
    always[probation:] = 1
    outside = np.ones(len(epoch), dtype=bool)
    for a, b in windows:
        outside &= (epoch < a) | (epoch > b)
    steps = _steps(epoch)
    scored = np.arange(len(epoch)) >= probation
    return FoldResult(
        fold=name,
        kind="nab",
        files=1,
        segments=result.windows,
        segments_detected=result.windows_found,
        false_events_per_h=None,
        time_in_alarm=float(steps[(alarm == 1) & outside & scored].sum())
        / max(float(steps[outside & scored].sum()), 1e-9),
        nab_score=result.normalised,
        always_nab=nab.score(epoch, always, windows, probation).normalised,
    )


def _epoch_seconds(table: SensorTable) -> npt.NDArray[np.float64]:
    """Epoch seconds (UTC) of a table's verbatim time text (NAB times carry no zone)."""
    stamps = pd.to_datetime(pd.Series(table.time_text), format="mixed")
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize("UTC")
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(seconds.to_numpy(), dtype=np.float64)


def _steps(times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row's share of time, logging gaps capped at ten sampling steps."""
    if len(times) < 2:
        return np.ones(len(times))
    median = float(np.median(np.diff(times)))
    steps = np.diff(times, append=times[-1] + median)
    return np.minimum(steps, 10 * median)


def _f1(tp: int, fp: int, fn: int) -> float:
    return tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0


def run_all(
    root: Path, make_scorer: Callable[[], StreamingScorer] = StreamingScorer
) -> list[FoldResult]:
    """Every fold found under ``root``, in discovery order."""
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    folds = list(discover(root))
    if not folds:
        raise FileNotFoundError(f"no data sets (CSV files) under {root}")
    return [run_fold(name, kind, files, make_scorer) for name, kind, files in folds]


def format_table(results: Sequence[FoldResult]) -> str:
    """The table a person reads: one line per fold, references last."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def num(x: float | None, fmt: str = ".3f") -> str:
        return "-" if x is None else format(x, fmt)

    head = (
        f"{'fold':<44} {'files':>5} {'F1':>6} {'FAR':>6} {'found':>7} {'delay':>7} "
        f"{'FA/h':>6} {'in alarm':>8} {'NAB':>6}   reference (always alarm)"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        found = "-" if r.segments is None else f"{r.segments_detected}/{r.segments}"
        delay = "-" if r.median_delay_s is None else f"{r.median_delay_s:.1f}s"
        ref = (
            f"F1 {r.always_f1:.3f}, FAR 100%"
            if r.always_f1 is not None
            else (f"NAB {r.always_nab:.1f}; never alarm: 0" if r.always_nab is not None else "")
        )
        lines.append(
            f"{r.fold:<44} {r.files:>5} {num(r.f1):>6} {pct(r.far):>6} {found:>7} {delay:>7} "
            f"{num(r.false_events_per_h, '.2f'):>6} {pct(r.time_in_alarm):>8} "
            f"{num(r.nab_score, '.1f'):>6}   {ref}"
        )
    return "\n".join(lines)
