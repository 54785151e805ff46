"""Anomaly detectors (scikit-learn style, ``score_samples`` higher = more anomalous)."""

from __future__ import annotations

from collections.abc import Callable

from analytics.detectors.base import BaseDetector, RobustStandardizer
from analytics.detectors.covariance import (
    DiagonalDetector,
    MahalanobisDetector,
    RegressionResidualDetector,
)
from analytics.detectors.ensemble import EnsembleDetector
from analytics.detectors.neighbours import IsolationForestDetector, LOFDetector
from analytics.detectors.pca import PCADetector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "BaseDetector",
    "DiagonalDetector",
    "EnsembleDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "MahalanobisDetector",
    "PCADetector",
    "RegressionResidualDetector",
    "RobustStandardizer",
    "make_detector",
]


def _ensemble() -> BaseDetector:
    return EnsembleDetector([DiagonalDetector(), PCADetector(), RegressionResidualDetector()])


DETECTORS: dict[str, Callable[[], BaseDetector]] = {
    "diagonal": DiagonalDetector,
    "pca": PCADetector,
    "mahalanobis": MahalanobisDetector,
    "regression": RegressionResidualDetector,
    "iforest": IsolationForestDetector,
    "lof": LOFDetector,
    "ensemble": _ensemble,
}

DEFAULT_DETECTOR = "pca"


def make_detector(name: str = DEFAULT_DETECTOR) -> BaseDetector:
    """A fresh, unfitted detector of the named family (see ``DETECTORS``)."""
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}") from None
