"""Reading sensor CSV files for replay and evaluation (separator detection, label removal)."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

logger = logging.getLogger(__name__)

# Ground-truth columns of benchmark files; a detector must never see them.
LABEL_COLUMNS = frozenset({"anomaly", "changepoint"})


@dataclass(frozen=True)
class SensorTable:
    """Rows of one asset: verbatim time strings, time in seconds, and numeric sensor values."""

    time_text: list[str]
    times_s: npt.NDArray[np.float64]
    sensors: list[str]
    values: npt.NDArray[np.float64]


def detect_separator(path: Path) -> str:
    """``;`` or ``,``, whichever splits the header line into more fields."""
    with path.open(encoding="utf-8", newline="") as fh:
        header = fh.readline()
    return ";" if header.count(";") >= header.count(",") and ";" in header else ","


def read_sensor_csv(path: Path, time_col: str = "datetime") -> SensorTable:
    """Load a CSV: drop label columns first, parse the time column, keep numeric sensors."""
    sep = detect_separator(path)
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep))
    wanted = [c for c in header if c.strip().lower() not in LABEL_COLUMNS]
    if time_col not in wanted:
        raise ValueError(f"{path}: no time column {time_col!r} (columns: {wanted})")
    # usecols keeps the label columns from ever being parsed.
    frame = pd.read_csv(path, sep=sep, usecols=wanted, dtype={time_col: str})
    time_text = frame[time_col].astype(str).tolist()
    stamps = pd.to_datetime(frame[time_col], format="mixed")
    times_s = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy(dtype=np.float64)
    if np.any(np.diff(times_s) < 0):
        raise ValueError(f"{path}: time column {time_col!r} is not in time order")
    sensors_frame = frame.drop(columns=[time_col]).apply(pd.to_numeric, errors="coerce")
    sensors = [c for c in sensors_frame.columns if sensors_frame[c].notna().any()]
    if not sensors:
        raise ValueError(f"{path}: no numeric sensor columns")
    dropped = sorted(set(sensors_frame.columns) - set(sensors))
    if dropped:
        logger.warning("%s: ignoring non-numeric columns %s", path, dropped)
    values = sensors_frame[sensors].to_numpy(dtype=np.float64)
    return SensorTable(time_text, np.asarray(times_s, dtype=np.float64), sensors, values)
