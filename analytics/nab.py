"""NAB-style evaluation: labelled anomaly windows, alarm onsets as detections, the standard
profile's score normalised per file (0 = never alarm, 100 = perfect).

As NAB's ``sweeper.py`` with the standard profile (TP weight 1, FP weight 0.11, FN weight 1):
the first detection inside a window earns ``sigma(y)`` with ``y`` its position relative to
the window's end (-1 at the start, 0 at the end) and ``sigma(y) = 2 / (1 + exp(5y)) - 1``; later
detections in the same window count nothing; a missed window costs -1; a detection outside
every window costs ``0.11 * sigma(y)`` with ``y`` its distance after the previous window in
window lengths (a detection just after a window costs little), or -0.11 before the first
window. Detections in the probationary period (the rows used for training) are ignored.
Normalised per file as ``100 * (raw + windows) / (2 * windows)``, the form the data set's
README uses.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

TP_WEIGHT = 1.0
FP_WEIGHT = 0.11
FN_WEIGHT = 1.0


@dataclass(frozen=True)
class NabResult:
    """Score of one file: normalised score, windows found, false detections."""

    normalised: float
    raw: float
    windows: int
    windows_found: int
    detections_inside: int
    false_detections: int


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: about 0.987 at -1, 0 at 0, tending to -1 far after."""
    if y > 20:  # exp overflow guard; the limit is -1
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def read_windows(labels: Path) -> list[tuple[float, float]]:
    """Anomaly windows of a ``*.labels.json`` file as (start, end) epoch seconds (UTC)."""
    doc = json.loads(labels.read_text("utf-8"))
    windows = []
    for start, end in doc["anomaly_windows"]:
        windows.append((_epoch_s(start), _epoch_s(end)))
    return sorted(windows)


def _epoch_s(text: str) -> float:
    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


def onsets(alarm: npt.ArrayLike) -> npt.NDArray[np.int_]:
    """Row indices where an alarm episode starts."""
    arr = np.asarray(alarm, dtype=np.int_)
    rising = np.flatnonzero(np.diff(np.concatenate([[0], arr])) == 1)
    return np.asarray(rising, dtype=np.int_)


def score(
    times_s: npt.ArrayLike,
    alarm: npt.ArrayLike,
    windows: list[tuple[float, float]],
    probation_rows: int,
) -> NabResult:
    """Score alarm onsets after the probationary rows against the windows."""
    times = np.asarray(times_s, dtype=np.float64)
    detections = [float(times[k]) for k in onsets(alarm) if k >= probation_rows]
    raw = 0.0
    found: set[int] = set()
    inside = false = 0
    for t in detections:
        hit = next((i for i, (a, b) in enumerate(windows) if a <= t <= b), None)
        if hit is not None:
            inside += 1
            if hit not in found:
                found.add(hit)
                a, b = windows[hit]
                raw += TP_WEIGHT * scaled_sigmoid((t - b) / max(b - a, 1.0))
            continue
        false += 1
        before = [(a, b) for a, b in windows if b < t]
        if before:
            a, b = before[-1]
            raw += FP_WEIGHT * scaled_sigmoid((t - b) / max(b - a, 1.0))
        else:
            raw -= FP_WEIGHT
    raw -= FN_WEIGHT * (len(windows) - len(found))
    n = len(windows)
    normalised = 100.0 * (raw + n) / (2.0 * n) if n else 0.0
    return NabResult(normalised, raw, n, len(found), inside, false)
