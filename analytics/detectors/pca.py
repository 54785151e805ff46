"""PCA monitoring statistics: Hotelling's T² inside the principal subspace plus Q (SPE) outside."""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import numpy.typing as npt

from analytics.detectors.base import BaseDetector, FloatArray, check_2d, shares

logger = logging.getLogger(__name__)


class PCADetector(BaseDetector):
    """Score = T²/k + Q/mean(Q_train): each term is about 1 on average for normal rows.

    ``variance`` is the share of training variance the kept components explain; the rest is
    the residual space watched by Q, where broken correlations between sensors show up.
    """

    def __init__(self, variance: float = 0.9, ridge: float = 1e-6) -> None:
        self.variance = variance
        self.ridge = ridge

    def fit(self, x: npt.ArrayLike, y: object = None) -> Self:
        """Find the principal subspace of the (standardised) training rows."""
        arr = check_2d(x)
        self.mean_ = arr.mean(axis=0)
        centred = arr - self.mean_
        _, sing, vt = np.linalg.svd(centred, full_matrices=False)
        eig = sing**2 / max(arr.shape[0] - 1, 1)
        ratio = np.cumsum(eig) / max(eig.sum(), 1e-300)
        k = int(np.searchsorted(ratio, self.variance) + 1)
        self.n_components_ = min(k, vt.shape[0])
        self.components_ = vt[: self.n_components_]
        self.eigenvalues_ = eig[: self.n_components_] + self.ridge
        resid = centred - (centred @ self.components_.T) @ self.components_
        self.q_scale_ = float(max((resid**2).sum(axis=1).mean(), self.ridge))
        return self

    def _parts(self, x: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        centred = check_2d(x) - self.mean_
        t = centred @ self.components_.T
        # T² split over columns: x_j * (P Λ^-1 t)_j sums to T² (negative parts mean "pulls
        # back towards normal" and are clipped when turned into shares).
        t2_parts = centred * ((t / self.eigenvalues_) @ self.components_) / self.n_components_
        resid = centred - t @ self.components_
        q_parts = resid**2 / self.q_scale_
        return t2_parts, q_parts

    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """T²/k + Q/Q_ref per row (higher = more anomalous)."""
        t2_parts, q_parts = self._parts(x)
        return np.asarray(t2_parts.sum(axis=1) + q_parts.sum(axis=1), dtype=np.float64)

    def contributions(self, x: npt.ArrayLike) -> FloatArray:
        """Per-column shares of T² and Q together."""
        t2_parts, q_parts = self._parts(x)
        return shares(np.clip(t2_parts, 0.0, None) + q_parts)
