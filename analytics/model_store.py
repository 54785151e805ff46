"""Fitted baselines on disk, without pickle: the rows a model was fitted on, plus JSON metadata.

A model is stored as the baseline it was fitted on (``<name>.npz``: float arrays only, read
with ``allow_pickle=False``) and ``<name>.json`` (format version, site/asset, sensors, training
window, rows, fit time, library versions, the threshold factor from feedback and the sha256 of
the npz). Loading checks version and hash, then refits: ``AssetModel.fit`` is fast and
deterministic, so the same rows give the same model, and nothing executable is ever read.
Both files are written atomically (temporary file + rename, npz first so the JSON that names
its hash is never ahead of it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from analytics.errors import ModelRejectedError
from analytics.files import atomic_write
from analytics.model import AssetModel
from analytics.scorer import SENSOR_POLICY

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
FloatArray = npt.NDArray[np.float64]
AssetKey = tuple[str, str]
# A sensor present in fewer than this share of the baseline rows is left out of the model.
MIN_SENSOR_COVERAGE = 0.5
# Fewer complete rows than this cannot describe normal behaviour (the scorer's own floor is 20).
MIN_BASELINE_ROWS = 30
LIBRARIES = ("numpy", "scipy", "scikit-learn", "equipmon")


@dataclass(frozen=True)
class Baseline:
    """Rows a model is fitted on: times (s), values (rows × sensors), sensor names."""

    sensors: tuple[str, ...]
    times_s: FloatArray
    values: FloatArray

    @property
    def start_s(self) -> float:
        """Time of the first row."""
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """Time of the last row."""
        return float(self.times_s[-1])


def build_baseline(
    points: Sequence[tuple[int, dict[str, float]]],
    *,
    keep: Callable[[int, dict[str, float]], bool] = lambda _t, _row: True,
    max_rows: int | None = None,
) -> Baseline:
    """Complete rows from points that may carry a subset of sensors (ValueError if too few).

    Sensors present in ≥ 50 % of the points are kept; a missing value reuses the sensor's last
    one; points rejected by ``keep`` (fault periods, out-of-range values) are left out.
    """
    counts: dict[str, int] = {}
    for _, row in points:
        for name in row:
            counts[name] = counts.get(name, 0) + 1
    sensors = tuple(sorted(s for s, c in counts.items() if c >= MIN_SENSOR_COVERAGE * len(points)))
    times: list[float] = []
    rows: list[list[float]] = []
    last: dict[str, float] = {}
    for t, row in points:
        last.update(row)
        if all(s in last for s in sensors) and keep(t, row):
            times.append(t / 1e9)
            rows.append([last[s] for s in sensors])
    if max_rows is not None and len(rows) > max_rows:
        times, rows = times[-max_rows:], rows[-max_rows:]
    if not sensors or len(rows) < MIN_BASELINE_ROWS:
        raise ValueError(f"baseline has {len(rows)} complete rows of {len(sensors)} sensors")
    return Baseline(sensors, np.array(times), np.array(rows, dtype=np.float64))


def fit_scorer(baseline: Baseline, threshold_factor: float = 1.0) -> AssetModel:
    """The default model fitted on a baseline, its threshold scaled by threshold_factor.

    The factor (feedback from "no fault found" outcomes) goes through the public constructor:
    the threshold is margin × tail quantile, so scaling the margin scales the threshold.
    """
    policy = dataclasses.replace(
        SENSOR_POLICY, threshold_margin=SENSOR_POLICY.threshold_margin * threshold_factor
    )
    return AssetModel(policy=policy).fit(
        baseline.values, times_s=baseline.times_s, sensors=list(baseline.sensors)
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries a fit depends on (recorded, not enforced)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def file_stem(key: AssetKey) -> str:
    """A file name of an asset that no site/asset text can turn into a path."""
    return "__".join(quote(part, safe="-_.") for part in key).replace(".", "%2E")


class ModelStore:
    """Baselines and metadata of every asset under ``root`` (``data_dir/models``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def paths(self, key: AssetKey) -> tuple[Path, Path]:
        """(npz, json) of an asset."""
        stem = file_stem(key)
        return self.root / f"{stem}.npz", self.root / f"{stem}.json"

    def save(
        self,
        key: AssetKey,
        baseline: Baseline,
        *,
        threshold_factor: float = 1.0,
        reason: str = "auto",
        fitted_at_s: float | None = None,
    ) -> dict[str, Any]:
        """Write an asset's baseline and metadata atomically; the metadata written."""
        self.root.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, times_s=baseline.times_s, values=baseline.values)
        blob = buffer.getvalue()
        meta = {
            "format_version": FORMAT_VERSION,
            "site": key[0],
            "asset": key[1],
            "sensors": list(baseline.sensors),
            "train_start_s": baseline.start_s,
            "train_end_s": baseline.end_s,
            "rows": len(baseline.times_s),
            "fitted_at_s": time.time() if fitted_at_s is None else fitted_at_s,
            "reason": reason,
            "threshold_factor": threshold_factor,
            "libraries": library_versions(),
            "sha256": hashlib.sha256(blob).hexdigest(),
        }
        npz, js = self.paths(key)
        atomic_write(npz, blob)
        atomic_write(js, json.dumps(meta, indent=1).encode())
        return meta

    def load(self, key: AssetKey) -> tuple[Baseline, dict[str, Any]] | None:
        """An asset's stored baseline and metadata; None if none; ModelRejectedError if unusable."""
        npz, js = self.paths(key)
        if not js.exists():
            return None
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
            blob = npz.read_bytes()
        except (OSError, ValueError) as exc:
            raise ModelRejectedError(
                f"unreadable model files for {key[0]}/{key[1]}: {exc}"
            ) from exc
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise ModelRejectedError(
                f"model of {key[0]}/{key[1]} has format version {version!r}, "
                f"this service reads {FORMAT_VERSION}"
            )
        if [meta.get("site"), meta.get("asset")] != list(key):
            raise ModelRejectedError(
                f"model file {js} belongs to {meta.get('site')}/{meta.get('asset')}"
            )
        if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            raise ModelRejectedError(
                f"model of {key[0]}/{key[1]}: sha256 of {npz.name} does not match"
            )
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                times = np.asarray(data["times_s"], dtype=np.float64)
                values = np.asarray(data["values"], dtype=np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelRejectedError(f"model of {key[0]}/{key[1]}: bad npz: {exc}") from exc
        sensors = tuple(str(s) for s in meta.get("sensors", []))
        if values.ndim != 2 or values.shape != (len(times), len(sensors)) or len(times) == 0:
            raise ModelRejectedError(f"model of {key[0]}/{key[1]}: arrays do not match its sensors")
        return Baseline(sensors, times, values), meta
