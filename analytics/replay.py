"""Offline replay: fit on the first rows of a table, stream the rest through the scorer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analytics.data import SensorTable
from analytics.scorer import StreamingScorer
from telemetry.progress import progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayResult:
    """Per-row output of a replay (training rows have alarm 0 and their in-sample score)."""

    alarm: npt.NDArray[np.int_]
    score: npt.NDArray[np.float64]
    scorer: StreamingScorer


def replay(
    table: SensorTable,
    train_rows: int,
    scorer: StreamingScorer | None = None,
    show_progress: bool = False,
) -> ReplayResult:
    """Fit on rows [0, train_rows) and feed the remaining rows one by one in time order
    (``show_progress``: a progress bar on a terminal)."""
    n = len(table.times_s)
    if not 0 < train_rows < n:
        raise ValueError(f"train rows must be between 1 and {n - 1}, got {train_rows}")
    model = (scorer or StreamingScorer()).fit(
        table.values[:train_rows], table.times_s[:train_rows], table.sensors
    )
    alarm = np.zeros(n, dtype=np.int_)
    score = np.full(n, np.nan)
    score[:train_rows] = model.training_scores_
    rows = range(train_rows, n)
    for k in progress(rows, "replay") if show_progress else rows:
        decision = model.update(table.values[k], float(table.times_s[k]))
        alarm[k] = int(decision.alarm)
        score[k] = decision.score
    return ReplayResult(alarm, score, model)


def write_decisions(path: Path, table: SensorTable, result: ReplayResult) -> None:
    """Write ``datetime;anomaly;score`` with the time text copied verbatim."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("datetime;anomaly;score\n")
        for text, flag, value in zip(table.time_text, result.alarm, result.score, strict=True):
            shown = "" if np.isnan(value) else f"{value:.6g}"
            fh.write(f"{text};{int(flag)};{shown}\n")
