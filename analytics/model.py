"""The per-asset live model as a scikit-learn estimator (``OutlierMixin`` / ``BaseEstimator``).

``AssetModel`` wraps ``StreamingScorer`` (analytics.scorer): parameters only in ``__init__``
(so ``get_params`` / ``set_params`` / ``clone`` work), ``fit`` returns ``self``, learned state
ends in ``_``. Inside, the relation channel is fitted with scikit-learn's ``PCA``,
``LinearRegression`` and contiguous ``KFold`` (analytics.relations).

Two ways to use it:

* **Live** (the detector service, replay): ``fit`` on a healthy baseline with its time stamps,
  then ``update(row, time_s)`` row by row in time order; each call returns a ``Decision`` with
  the alarm state and the sensors behind it.
* **Batch** (scikit-learn tools, cross-validation with ``TimeSeriesSplit``): ``score_samples``
  streams the rows of ``X`` through a copy of the fitted model, as if they followed the training
  rows, and leaves the model itself untouched.

Sign convention: ``score_samples`` is **higher = more anomalous** (the house convention; note
that scikit-learn's own ``IsolationForest`` is the other way round). ``decision_function`` is
``threshold_ - score`` (negative = outlier) and ``predict`` gives -1 for outliers, 1 for inliers,
as scikit-learn expects of an outlier detector.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from analytics.alarm import AlarmPolicy
from analytics.level import SensorLevels, TrainingEnvelope
from analytics.running import RunningState
from analytics.scorer import Decision, StreamingScorer

FloatArray = npt.NDArray[np.float64]


class AssetModel(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """One asset's anomaly model; see the module docstring for the two ways to use it."""

    def __init__(
        self,
        *,
        sample_interval_s: float = 10.0,
        policy: AlarmPolicy | None = None,
        sensor_levels: SensorLevels | None = None,
        short_window_fractions: tuple[float, ...] = (0.5,),
        relations: bool = True,
        relation_min_r2: float = 0.5,
        envelope: TrainingEnvelope | None = None,
        running: RunningState | None = None,
    ) -> None:
        # Spacing of rows given without time stamps (batch use); live rows carry their own.
        self.sample_interval_s = sample_interval_s
        self.policy = policy
        self.sensor_levels = sensor_levels
        self.short_window_fractions = short_window_fractions
        self.relations = relations
        self.relation_min_r2 = relation_min_r2
        self.envelope = envelope
        self.running = running

    def fit(
        self,
        X: npt.ArrayLike,
        y: object = None,
        *,
        times_s: npt.ArrayLike | None = None,
        sensors: Sequence[str] | None = None,
    ) -> Self:
        """Learn normal behaviour from healthy rows (n_rows, n_sensors); ``y`` is ignored."""
        values = validate_data(self, X, dtype=np.float64)
        times = self._times(len(values), 0.0) if times_s is None else np.asarray(times_s, float)
        names = list(sensors) if sensors is not None else [f"x{i}" for i in range(values.shape[1])]
        self.scorer_ = StreamingScorer(
            policy=self.policy,
            sensor_levels=self.sensor_levels,
            short_window_fractions=self.short_window_fractions,
            relations=self.relations,
            relation_min_r2=self.relation_min_r2,
            envelope=self.envelope,
            running=self.running,
        ).fit(values, times, names)
        self.sensors_ = names
        self.threshold_ = float(self.scorer_.threshold_)
        self.last_fit_time_s_ = float(times[-1])
        return self

    # -- live ---------------------------------------------------------------------------------

    def update(self, row: npt.ArrayLike, time_s: float) -> Decision:
        """Score one live row (values in ``sensors_`` order) and advance the alarm state."""
        return self.scorer_.update(row, time_s)

    def baseline_shift(self) -> dict[str, float]:
        """Largest baseline move per sensor since training (training scale units)."""
        return self.scorer_.baseline_shift()

    # -- batch (scikit-learn) -----------------------------------------------------------------

    def score_samples(self, X: npt.ArrayLike) -> FloatArray:
        """Scores of rows streamed after the training rows (higher = more anomalous)."""
        return np.array([d.score for d in self._stream(X)], dtype=np.float64)

    def decision_function(self, X: npt.ArrayLike) -> FloatArray:
        """``threshold_ - score``: negative for outliers."""
        check_is_fitted(self, "scorer_")
        return self.threshold_ - self.score_samples(X)

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int_]:
        """-1 for outliers (score at or above the threshold), 1 for inliers."""
        return np.where(self.decision_function(X) <= 0, -1, 1)

    def _stream(self, X: npt.ArrayLike) -> list[Decision]:
        check_is_fitted(self, "scorer_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        scorer = copy.deepcopy(self.scorer_)
        times = self._times(len(values), self.last_fit_time_s_ + self.sample_interval_s)
        return [scorer.update(row, float(t)) for row, t in zip(values, times, strict=True)]

    def _times(self, n: int, start: float) -> FloatArray:
        return start + self.sample_interval_s * np.arange(n, dtype=np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # The model needs a few windows of rows to learn a baseline from.
        tags.input_tags.allow_nan = False
        return tags
