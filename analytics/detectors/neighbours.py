"""Non-parametric detectors wrapped to the house contract: IsolationForest and LOF.

Neither model has a native attribution, so their contributions are the per-column shares of
the squared robust z-scores against the training rows (which column is furthest out). That is
a proxy and is documented as such in docs/analytics.md.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from analytics.detectors.base import (
    BaseDetector,
    FloatArray,
    RobustStandardizer,
    check_2d,
    shares,
)

logger = logging.getLogger(__name__)


class _MarginalExplainer(BaseDetector):
    """Contributions from marginal robust z-scores (shared by the tree and neighbour models)."""

    def _fit_marginals(self, arr: FloatArray) -> None:
        self.marginals_ = RobustStandardizer().fit(arr)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Shares of squared robust z-scores per column."""
        return shares(self.marginals_.transform(x) ** 2)


class IsolationForestDetector(_MarginalExplainer):
    """``sklearn.ensemble.IsolationForest``; score = 0.5 - sklearn score (higher = worse)."""

    def __init__(self, n_estimators: int = 100, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Grow the forest on the training rows."""
        arr = check_2d(x)
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators, random_state=self.random_state
        ).fit(arr)
        self._fit_marginals(arr)
        return self

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Isolation anomaly score (sklearn's sign flipped)."""
        return np.asarray(0.5 - self.model_.score_samples(check_2d(x)), dtype=np.float64)


class LOFDetector(_MarginalExplainer):
    """``LocalOutlierFactor`` in novelty mode; score = LOF - 1 clipped at 0."""

    def __init__(self, n_neighbors: int = 20) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Index the training rows."""
        arr = check_2d(x)
        k = min(self.n_neighbors, max(arr.shape[0] - 1, 1))
        self.model_ = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(arr)
        self._fit_marginals(arr)
        return self

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Local outlier factor minus one (0 = as dense as the training neighbourhood)."""
        lof = -self.model_.score_samples(check_2d(x))
        return np.asarray(np.clip(lof - 1.0, 0.0, None), dtype=np.float64)
