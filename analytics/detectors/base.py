"""Shared detector contract (scikit-learn style) and the robust standardiser detectors rely on.

Sign convention for every detector here: ``score_samples`` returns higher = more anomalous,
never negative for the distance-type detectors, on the scale of the training data. Thresholds
and alarm logic live in ``analytics.alarm``, not here.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Self

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# 1.4826 * MAD estimates the standard deviation of normal data and ignores a few outliers.
MAD_TO_STD = 1.4826


def check_2d(x: npt.ArrayLike) -> FloatArray:
    """Return ``x`` as a finite 2-D float array or raise ValueError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("input contains NaN or infinite values")
    return arr


def shares(parts: FloatArray) -> FloatArray:
    """Normalise non-negative per-column parts so each row sums to 1 (uniform when all zero)."""
    parts = np.clip(parts, 0.0, None)
    total = parts.sum(axis=1, keepdims=True)
    uniform = np.full_like(parts, 1.0 / parts.shape[1])
    return np.asarray(np.divide(parts, total, out=uniform, where=total > 0), dtype=np.float64)


class BaseDetector(ABC):
    """Anomaly detector: ``fit`` on normal rows, then score and explain new rows."""

    @abstractmethod
    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Learn the normal behaviour from rows of ``x`` (``y`` is ignored)."""

    @abstractmethod
    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Anomaly score per row, higher = more anomalous."""

    @abstractmethod
    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Share of each row's anomaly per input column; rows are >= 0 and sum to 1."""


class RobustStandardizer:
    """Centre by the median and scale by 1.4826 * MAD, with a floor for near-constant columns.

    The floor matters for quantised or idle sensors whose training MAD is zero: without it
    any later change would be an infinite z-score.
    """

    def __init__(self, rel_floor: float = 1e-3, abs_floor: float = 1e-9) -> None:
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor

    def fit(
        self, x: npt.ArrayLike, y: object = None, min_scale: npt.ArrayLike | None = None
    ) -> Self:
        """Learn per-column median and robust scale (never below ``min_scale`` if given)."""
        arr = check_2d(x)
        self.center_ = np.median(arr, axis=0)
        mad = MAD_TO_STD * np.median(np.abs(arr - self.center_), axis=0)
        # Fall back on the standard deviation when over half the rows are equal (MAD = 0).
        std = arr.std(axis=0)
        scale = np.where(mad > 0, mad, std)
        floor = self.rel_floor * (np.abs(self.center_) + np.abs(arr).mean(axis=0)) + self.abs_floor
        if min_scale is not None:
            floor = np.maximum(floor, np.asarray(min_scale, dtype=np.float64))
        self.scale_ = np.maximum(scale, floor)
        return self

    def transform(self, x: npt.ArrayLike) -> FloatArray:
        """Standardised copy of ``x``."""
        return np.asarray((check_2d(x) - self.center_) / self.scale_, dtype=np.float64)
