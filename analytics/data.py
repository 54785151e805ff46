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


# Time columns tried in order when none is named: SKAB's, then NAB's.
TIME_COLUMNS = ("datetime", "timestamp")


def read_sensor_csv(path: Path, time_col: str | None = None, strict: bool = False) -> SensorTable:
    """Load a CSV: drop label columns first, parse the time column, keep numeric sensors.

    Rows out of time order are sorted and, of rows with the same time, the last is kept, with a
    warning that says how many rows moved or went (NAB's real data has such rows); ``strict``
    refuses them instead.
    """
    sep = detect_separator(path)
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep))
    wanted = [c for c in header if c.strip().lower() not in LABEL_COLUMNS]
    if time_col is None:
        time_col = next((c for c in TIME_COLUMNS if c in wanted), TIME_COLUMNS[0])
    if time_col not in wanted:
        raise ValueError(f"{path}: no time column {time_col!r} (columns: {wanted})")
    # usecols keeps the label columns from ever being parsed.
    frame = pd.read_csv(path, sep=sep, usecols=wanted, dtype={time_col: str})
    frame = _in_time_order(path, frame, time_col, strict)
    time_text = frame[time_col].astype(str).tolist()
    stamps = pd.to_datetime(frame[time_col], format="mixed")
    times_s = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy(dtype=np.float64)
    sensors_frame = frame.drop(columns=[time_col]).apply(pd.to_numeric, errors="coerce")
    sensors = [c for c in sensors_frame.columns if sensors_frame[c].notna().any()]
    if not sensors:
        raise ValueError(f"{path}: no numeric sensor columns")
    dropped = sorted(set(sensors_frame.columns) - set(sensors))
    if dropped:
        logger.warning("%s: ignoring non-numeric columns %s", path, dropped)
    values = sensors_frame[sensors].to_numpy(dtype=np.float64)
    return SensorTable(time_text, np.asarray(times_s, dtype=np.float64), sensors, values)


def _in_time_order(path: Path, frame: pd.DataFrame, time_col: str, strict: bool) -> pd.DataFrame:
    """Rows sorted by time with the last of each duplicate time kept (or refused if strict)."""
    stamps = pd.to_datetime(frame[time_col], format="mixed")
    backwards = int((stamps.diff().dt.total_seconds() < 0).sum())
    duplicates = int(stamps.duplicated(keep="last").sum())
    if not backwards and not duplicates:
        return frame
    what = f"{backwards} rows out of time order, {duplicates} rows with a repeated time"
    if strict:
        raise ValueError(f"{path}: {what} (without --strict they are sorted, last one kept)")
    order = np.argsort(stamps.to_numpy(), kind="stable")
    ordered = frame.iloc[order]
    kept = ordered[~pd.to_datetime(ordered[time_col], format="mixed").duplicated(keep="last")]
    moved = int(np.sum(order != np.arange(len(order))))
    logger.warning(
        "%s: %s; sorted by time (%d rows moved) and kept the last of each repeated time",
        path,
        what,
        moved,
    )
    return kept.reset_index(drop=True)
