"""Offline evaluation of simulated fleets: per-fault detection delay, leading sensors and false
alarms per asset, from a device_sims backfill and its ground truth (the data-set folds are in
``analytics.benchmark``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.data import SensorTable
from analytics.scorer import StreamingScorer

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int_]


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
