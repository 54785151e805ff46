"""Covariance detectors: Mahalanobis (MCD or shrunk), regression residuals, diagonal z.

Both models use one covariance matrix. ``MahalanobisDetector`` scores the squared distance of
a row from the training centre. ``RegressionResidualDetector`` predicts every column from all
the others (the least-squares regression implied by the covariance) and scores the sum of
squared standardised residuals — a row whose sensors disagree with one another stands out
even when each sensor alone is in its usual range.
"""

from __future__ import annotations

import logging
import warnings
from typing import Self

import numpy as np
import numpy.typing as npt
from sklearn.covariance import LedoitWolf, MinCovDet

from analytics.detectors.base import (
    BaseDetector,
    FloatArray,
    RobustStandardizer,
    check_2d,
    shares,
)

logger = logging.getLogger(__name__)


def _covariance(arr: FloatArray, robust: bool, support_fraction: float | None) -> FloatArray:
    """Training covariance: MCD when asked and well-posed, Ledoit-Wolf shrinkage otherwise."""
    n, d = arr.shape
    if robust and n > 2 * d:
        try:
            with warnings.catch_warnings():
                # MCD warns when the covariance is singular; we fall back below in that case.
                warnings.simplefilter("ignore")
                mcd = MinCovDet(support_fraction=support_fraction, random_state=0).fit(arr)
            cov = np.asarray(mcd.covariance_, dtype=np.float64)
            if np.linalg.cond(cov) < 1e12:
                return cov
        except (ValueError, np.linalg.LinAlgError) as exc:
            logger.info("MCD failed (%s); using Ledoit-Wolf shrinkage", exc)
    return np.asarray(LedoitWolf().fit(arr).covariance_, dtype=np.float64)


class MahalanobisDetector(BaseDetector):
    """Squared Mahalanobis distance from the (robust) training centre, divided by the dimension."""

    def __init__(
        self, robust: bool = True, support_fraction: float | None = None, ridge: float = 1e-3
    ) -> None:
        self.robust = robust
        self.support_fraction = support_fraction
        self.ridge = ridge

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Estimate centre and precision matrix."""
        arr = check_2d(x)
        self.location_ = np.median(arr, axis=0) if self.robust else arr.mean(axis=0)
        cov = _covariance(arr, self.robust, self.support_fraction)
        # A small ridge keeps directions that never moved in training from dominating forever.
        cov = cov + self.ridge * np.eye(cov.shape[0]) * max(float(np.trace(cov)) / len(cov), 1e-12)
        self.precision_ = np.linalg.inv(cov)
        return self

    def _parts(self, x: npt.ArrayLike) -> FloatArray:
        diff = check_2d(x) - self.location_
        return np.asarray(diff * (diff @ self.precision_) / diff.shape[1], dtype=np.float64)

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """D²/d per row (about 1 for normal rows)."""
        return np.asarray(self._parts(x).sum(axis=1), dtype=np.float64)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Per-column terms of D² (negative terms clipped) as shares."""
        return shares(self._parts(x))


class RegressionResidualDetector(BaseDetector):
    """Each column predicted from all others by ridge-regularised linear regression.

    With precision matrix K, the residual of regressing column j on the others is
    (K (x - mu))_j / K_jj with variance 1 / K_jj, so all regressions cost one matrix product.
    """

    def __init__(self, ridge: float = 0.05) -> None:
        self.ridge = ridge

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Estimate the joint linear model of all columns."""
        arr = check_2d(x)
        self.location_ = arr.mean(axis=0)
        cov = np.cov(arr, rowvar=False).reshape(arr.shape[1], arr.shape[1])
        scale = max(float(np.trace(cov)) / len(cov), 1e-12)
        self.precision_ = np.linalg.inv(cov + self.ridge * scale * np.eye(len(cov)))
        return self

    def _parts(self, x: npt.ArrayLike) -> FloatArray:
        diff = check_2d(x) - self.location_
        diag = np.diag(self.precision_)
        # residual_j / sd_j = (K d)_j / sqrt(K_jj); squared and averaged over columns.
        z = (diff @ self.precision_) / np.sqrt(diag)
        return np.asarray(z**2 / diff.shape[1], dtype=np.float64)

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Mean squared standardised residual per row."""
        return np.asarray(self._parts(x).sum(axis=1), dtype=np.float64)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Share of the squared residuals per column."""
        return shares(self._parts(x))


class DiagonalDetector(BaseDetector):
    """Mean squared robust z-score over columns (Mahalanobis with a diagonal covariance).

    Learns no correlations, so it cannot be fooled by correlations that a short training
    window happened to show; the price is that it misses broken correlations between sensors
    that each stay in their own range.
    """

    def __init__(self) -> None:
        pass

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Learn per-column median and robust scale."""
        arr = check_2d(x)
        self.scaler_ = RobustStandardizer().fit(arr)
        return self

    def _parts(self, x: npt.ArrayLike) -> FloatArray:
        z = self.scaler_.transform(x)
        return np.asarray(z**2 / z.shape[1], dtype=np.float64)

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Mean squared robust z-score per row."""
        return np.asarray(self._parts(x).sum(axis=1), dtype=np.float64)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Share of the squared z-scores per column."""
        return shares(self._parts(x))
