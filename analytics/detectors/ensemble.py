"""Ensemble of detectors: the mean of member scores, each put on a common scale first."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt

from analytics.detectors.base import BaseDetector, FloatArray, check_2d

logger = logging.getLogger(__name__)


class EnsembleDetector(BaseDetector):
    """Mean of member scores, each divided by its own training 95th percentile.

    Dividing by a training quantile makes "1" mean "as unusual as the 5 % tail of normal" for
    every member, so no member dominates just because its raw scale is larger. Contributions
    are the members' shares weighted by each member's normalised score.
    """

    def __init__(self, members: Sequence[BaseDetector], quantile: float = 0.95) -> None:
        self.members = members
        self.quantile = quantile

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Fit a copy of each member and record its training score scale."""
        arr = check_2d(x)
        self.members_ = [copy.deepcopy(m).fit(arr) for m in self.members]
        self.scales_ = np.array(
            [
                max(float(np.quantile(m.score_samples(arr), self.quantile)), 1e-12)
                for m in self.members_
            ]
        )
        return self

    def _member_scores(self, arr: FloatArray) -> FloatArray:
        stacked = np.stack([m.score_samples(arr) for m in self.members_], axis=1)
        return np.asarray(stacked / self.scales_, dtype=np.float64)

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """Mean normalised member score per row."""
        return np.asarray(self._member_scores(check_2d(x)).mean(axis=1), dtype=np.float64)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Members' contribution shares weighted by their normalised scores."""
        arr = check_2d(x)
        weights = np.clip(self._member_scores(arr), 0.0, None)
        total = weights.sum(axis=1, keepdims=True)
        weights = np.divide(
            weights, total, out=np.full_like(weights, 1 / len(self.members_)), where=total > 0
        )
        parts = sum(weights[:, [k]] * m.contributions(arr) for k, m in enumerate(self.members_))
        return np.asarray(parts, dtype=np.float64)
