"""Offline evaluation: SKAB-style folders (pooled confusion, segments, delays, drift) and
simulated fleets (per-fault detection delay, leading sensors, false alarms per asset)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.data import SensorTable, read_sensor_csv
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
    # One decimal: the median of an even number of segments can end in .5 s.
    delay = "n/a" if report.median_delay_s is None else f"{report.median_delay_s:.1f} s"
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


# -- simulated fleets (device_sims backfill output, read as wire-format JSON lines) -----------


@dataclass(frozen=True)
class Episode:
    """One alarm episode of an asset: raise and clear times (s) and its leading sensors."""

    start_s: float
    end_s: float
    # Sensors by summed share over the episode's first hour (largest first).
    leading: tuple[str, ...]


@dataclass(frozen=True)
class FaultResult:
    """How one injected fault was seen: first alarm at or after onset, and what it named."""

    asset: str
    kind: str
    onset_s: float
    delay_s: float | None
    leading: tuple[str, ...]
    false_alarms_before: int


def tables_from_jsonl(lines: Iterable[bytes | str]) -> dict[str, SensorTable]:
    """Per-asset tables from JSON-lines readings (``{"asset", "time", "sensors"}``).

    Times are RFC 3339 strings as the simulator writes them; ``times_s`` are epoch seconds,
    so faults' ground-truth onsets can be compared directly. A sensor missing from a reading
    is NaN there (the scorer holds its last value).
    """
    rows: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        rows.setdefault(str(record["asset"]), []).append((str(record["time"]), record["sensors"]))
    tables = {}
    for asset, items in rows.items():
        sensors = list(dict.fromkeys(name for _, values in items for name in values))
        stamps = pd.to_datetime([text for text, _ in items], utc=True, format="ISO8601")
        times = (stamps - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy(dtype=np.float64)
        values = np.array(
            [[float(v.get(name, np.nan)) for name in sensors] for _, v in items], dtype=np.float64
        )
        tables[asset] = SensorTable([text for text, _ in items], times, sensors, values)
    return tables


def alarm_episodes(
    table: SensorTable, train_until_s: float, scorer: StreamingScorer | None = None
) -> list[Episode]:
    """Fit on rows before ``train_until_s`` (epoch s), stream the rest, list alarm episodes."""
    train_rows = int(np.searchsorted(table.times_s, train_until_s))
    model = replay_scorer(table, train_rows, scorer)
    episodes: list[Episode] = []
    start: float | None = None
    shares: dict[str, float] = {}
    for k in range(train_rows, len(table.times_s)):
        t = float(table.times_s[k])
        decision = model.update(table.values[k], t)
        if decision.alarm and start is None:
            start, shares = t, {}
        if decision.alarm and start is not None and t - start < 3600.0:
            for name, share in decision.top_sensors:
                shares[name] = shares.get(name, 0.0) + share
        if not decision.alarm and start is not None:
            episodes.append(Episode(start, t, _ranked(shares)))
            start = None
    if start is not None:
        episodes.append(Episode(start, float(table.times_s[-1]), _ranked(shares)))
    return episodes


def replay_scorer(
    table: SensorTable, train_rows: int, scorer: StreamingScorer | None = None
) -> StreamingScorer:
    """A scorer fitted on the first ``train_rows`` rows of a table."""
    if not 0 < train_rows < len(table.times_s):
        raise ValueError(f"train rows must be between 1 and {len(table.times_s) - 1}")
    return (scorer or StreamingScorer()).fit(
        table.values[:train_rows], table.times_s[:train_rows], table.sensors
    )


def _ranked(shares: dict[str, float]) -> tuple[str, ...]:
    return tuple(name for name, _ in sorted(shares.items(), key=lambda kv: -kv[1]))


def fault_result(asset: str, kind: str, onset_s: float, episodes: Sequence[Episode]) -> FaultResult:
    """The first episode still raised at or after onset is the detection."""
    hit = next((e for e in episodes if e.end_s >= onset_s), None)
    before = sum(1 for e in episodes if e.end_s < onset_s)
    return FaultResult(
        asset=asset,
        kind=kind,
        onset_s=onset_s,
        delay_s=None if hit is None else max(hit.start_s - onset_s, 0.0),
        leading=() if hit is None else hit.leading,
        false_alarms_before=before,
    )


def format_fault_report(
    results: Sequence[FaultResult], healthy: Mapping[str, Sequence[Episode]]
) -> str:
    """Per-fault delay and leading sensors, then false alarms per healthy asset."""
    lines = [f"{'asset':<26} {'fault':<15} {'delay':>9}  leading sensors (false alarms before)"]
    for r in results:
        delay = "missed" if r.delay_s is None else f"{r.delay_s / 3600:.2f} h"
        lead = ", ".join(r.leading[:3]) or "-"
        lines.append(f"{r.asset:<26} {r.kind:<15} {delay:>9}  {lead} ({r.false_alarms_before})")
    for asset, episodes in healthy.items():
        lines.append(f"{asset:<26} {'healthy':<15} {len(episodes):>7} false alarms")
    return "\n".join(lines)


def evaluate_sims(
    data: Path, truth: Path, train_s: float = 7 * 86400.0
) -> tuple[list[FaultResult], dict[str, list[Episode]]]:
    """Score a device_sims backfill (JSON lines) against its ground-truth file.

    Every asset is fitted on its first ``train_s`` seconds and scored after that; assets with
    no fault in the truth file count as healthy (every alarm of theirs is false).
    """
    with data.open("rb") as fh:
        tables = tables_from_jsonl(fh)
    faults = [json.loads(line) for line in truth.read_text("utf-8").splitlines() if line.strip()]
    episodes = {
        asset: alarm_episodes(table, float(table.times_s[0]) + train_s)
        for asset, table in tables.items()
    }
    results = [
        fault_result(f["asset"], f["kind"], f["onset_ns"] / 1e9, episodes.get(f["asset"], []))
        for f in faults
        if f.get("sensor") is None  # sensor faults are instrument problems, scored elsewhere
    ]
    faulty = {f["asset"] for f in faults}
    healthy = {a: e for a, e in episodes.items() if a not in faulty}
    return results, healthy


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analytics.evaluate DATA.jsonl TRUTH.jsonl``: per-fault report of a backfill."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m analytics.evaluate", description=__doc__)
    parser.add_argument("data", type=Path, help="device_sims backfill output (--format jsonl)")
    parser.add_argument("truth", type=Path, help="its ground truth (--truth)")
    parser.add_argument("--train-days", type=float, default=7.0, help="baseline per asset")
    args = parser.parse_args(argv)
    try:
        results, healthy = evaluate_sims(args.data, args.truth, args.train_days * 86400.0)
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(format_fault_report(results, healthy) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
