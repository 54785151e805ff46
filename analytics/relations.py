"""Cross-sensor relation residuals: each sensor's level predicted from the others.

A residual ``level_j - f_j(levels of the others)`` is invariant to any drift that moves the
sensors together the way they move together in normal operation (load, ambient, regime), and
grows when one or two sensors leave the pattern (a bearing heating up while load is steady, a
flow that drops while the pump draws the same current). It is therefore scored against the
*fixed* training reference, never against an adaptive baseline: a fault that develops over days
keeps growing here however slowly it develops.

The coefficients are learned on the high-pass part of the training levels (fluctuations around a
slow EWMA), not on the levels themselves: a few minutes of training often contain a common slow
trend that makes unrelated sensors look correlated, and a relation learned from that trend would
be broken by the next unrelated drift. Only sensors that the others explain well out of sample
(``min_r2``) are scored; for the rest the relation carries no information beyond the level,
which the adaptive level channel already watches.

Sign convention: ``score_samples`` is higher = more anomalous (max squared standardised
residual over the scored sensors; 0 when no sensor qualifies).
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import numpy.typing as npt
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict

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


def _principal(hz: FloatArray) -> FloatArray:
    """Kept principal directions (n, k) of standardised rows (scikit-learn's PCA).

    Components are kept by the Kaiser rule (eigenvalue of the correlation matrix > 1: the
    component explains more than one sensor's worth of variance), so only shared structure
    counts as a relation and a sensor's own noise never does.
    """
    scaled = (hz - hz.mean(axis=0)) / np.maximum(hz.std(axis=0), 1e-12)
    pca = PCA(svd_solver="full").fit(scaled)
    # explained_variance_ divides by n - 1; the correlation matrix's eigenvalues by n.
    eig = pca.explained_variance_ * (len(hz) - 1) / len(hz)
    return np.asarray(pca.components_[eig > 1.0].T, dtype=np.float64)


def _out_of_fold_r2(hz: FloatArray, folds: int) -> FloatArray:
    """R² of predicting each column from the others (linear regression), each contiguous
    block predicted by a model fitted on the other blocks."""
    n = hz.shape[1]
    cv = KFold(n_splits=max(folds, 2), shuffle=False)
    r2 = np.zeros(n)
    for j in range(n):
        others = np.delete(hz, j, axis=1)
        pred = cross_val_predict(LinearRegression(), others, hz[:, j], cv=cv)
        err = float(((hz[:, j] - pred) ** 2).sum())
        total = float(((hz[:, j] - hz[:, j].mean()) ** 2).sum())
        r2[j] = 1.0 - err / max(total, 1e-12)
    return r2


class RelationResiduals:
    """Learn the shared structure of high-pass rows; score level rows off that structure.

    The residual is the part of the standardised level vector outside the principal subspace
    (total least squares): unlike regressing each sensor on the others, it carries no
    attenuation bias, so a large common-mode excursion along the learned relation leaves no
    residual at all.
    """

    def __init__(self, min_r2: float = 0.5, folds: int = 2) -> None:
        # min_r2: the shared components must explain at least half of a sensor's fluctuations
        # before its relation is trusted (more signal than noise).
        self.min_r2 = min_r2
        # Contiguous folds: smoothed rows are autocorrelated, so an in-sample R² of a few
        # minutes finds "relations" in shared slow wiggles; out of sample they do not hold.
        self.folds = folds

    def fit(self, highpass: npt.ArrayLike, levels: npt.ArrayLike) -> Self:
        """Learn relations from high-pass rows; set the residual reference from level rows."""
        hp = check_2d(highpass)
        lv = check_2d(levels)
        if hp.shape != lv.shape:
            raise ValueError("highpass and levels must have the same shape")
        n = hp.shape[1]
        self.hp_scale_ = np.maximum(hp.std(axis=0), 1e-12)
        hz = hp / self.hp_scale_
        self.scored_ = np.zeros(n, dtype=bool)
        self.r2_ = np.zeros(n)
        self.components_ = np.zeros((n, 0))
        if n >= 2 and len(hp) >= 20:
            self.r2_ = _out_of_fold_r2(hz, self.folds)
            self.scored_ = self.r2_ >= self.min_r2
        if self.scored_.sum() >= 2:
            # Refit on the related sensors only, so unrelated noise does not shape the subspace.
            sub = _principal(hz[:, self.scored_])
            self.components_ = np.zeros((n, sub.shape[1]))
            self.components_[self.scored_] = sub
        else:
            self.scored_[:] = False
        hp_resid = self._residuals_raw(hz, centred=False)
        resid = self._residuals_raw(lv / self.hp_scale_, centred=False)
        self.center_ = np.median(resid, axis=0)
        mad = MAD_TO_STD * np.median(np.abs(resid - self.center_), axis=0)
        # A few minutes of levels can be quieter than their fluctuations suggest: never trust
        # the level residual spread below the high-pass residual spread.
        self.scale_ = np.maximum(np.maximum(mad, hp_resid.std(axis=0)), 1e-9)
        logger.info("relations: r2 %s, scored %d", np.round(self.r2_, 2), int(self.scored_.sum()))
        return self

    def score_row(self, levels: FloatArray) -> float:
        """``score_samples`` of one level row (n_sensors,), for the live path.

        The row's shape is known and its values are held finite by the features, so the
        batch path's checks and masks are left out: only the scored sensors are computed,
        with the projection onto the relation subspace as one precomputed matrix (the same
        scores to rounding, ~1e-15).
        """
        live = self.__dict__.get("_live")
        if live is None:  # first live row (or a model pickled before it)
            live = self._live = self._live_terms()
        scored, hp_scale, projection, center, scale = live
        lz = levels[scored] / hp_scale
        r = (lz - lz @ projection - center) / scale
        return float((r**2).max())

    def _live_terms(
        self,
    ) -> tuple[npt.NDArray[np.intp], FloatArray, FloatArray, FloatArray, FloatArray]:
        scored = np.flatnonzero(self.scored_)
        sub = self.components_[scored]
        return (
            scored,
            self.hp_scale_[scored],
            sub @ sub.T,
            np.asarray(self.center_, dtype=np.float64)[scored],
            self.scale_[scored],
        )

    def _residuals_raw(self, lz: FloatArray, centred: bool = True) -> FloatArray:
        lz = np.where(self.scored_, lz, 0.0)
        out = lz - (lz @ self.components_) @ self.components_.T
        return np.asarray(out - self.center_ if centred else out, dtype=np.float64)

    def residuals(self, levels: npt.ArrayLike) -> FloatArray:
        """Standardised residuals (rows, sensors); 0 for sensors that are not scored."""
        r = self._residuals_raw(check_2d(levels) / self.hp_scale_) / self.scale_
        return np.asarray(np.where(self.scored_, r, 0.0), dtype=np.float64)

    def score_samples(self, levels: npt.ArrayLike) -> FloatArray:
        """Max squared standardised residual per row (higher = more anomalous)."""
        return np.asarray(np.max(self.residuals(levels) ** 2, axis=1), dtype=np.float64)

    def contributions(self, levels: npt.ArrayLike) -> FloatArray:
        """Per-sensor shares of the squared residuals."""
        return shares(self.residuals(levels) ** 2)
