"""Streaming scorer: the per-asset level, relation and envelope channels and alarm state.

Channels, each against its own threshold, combined into one score (the largest): the level
channel (adaptive, for changes; scanned at its long window and at shorter ones, each scale with
its own threshold from its own training scores), the relation channel (cross-sensor structure
against the fixed training reference) and the training envelope (slow levels against the frozen
training range, for faults that develop over days; active when the baseline spans a day or
more).

This is the code path the live service uses: fit once on a window of normal rows, then feed
rows in time order to ``update`` and act on the returned ``Decision``. Offline replay and
evaluation go through exactly the same ``update`` calls.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Self

import numpy as np
import numpy.typing as npt

from analytics.alarm import (
    AlarmPolicy,
    AlarmState,
    AlarmStateMachine,
    baseline_threshold,
    health_score,
)
from analytics.features import PER_SENSOR, CausalFeatures
from analytics.level import SensorLevels, TrainingEnvelope
from analytics.relations import RelationResiduals
from analytics.running import RunningState
from analytics.seasonal import SeasonalLevels, slow_series

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Alarm policy of the per-sensor level channel: its score is a max over sensors of nearly
# Gaussian z values, so a tail quantile of 0.995 of the training scores is estimable from a few
# hundred rows; 5 s on-delay / 30 s off-delay are within the ISA-18.2 / EEMUA 191 range. The
# off-delay is severity-weighted (analytics.alarm): its job is to stop chatter, which only a
# score near the clear level threatens, so that one holds the full 30 s, while a score k times
# below the clear level counts each second k times (the condition is gone). Power 1, not 2:
# on an intermittent fault (device_sims belt slip at 10 s) power 2 doubled the re-raises, power
# 1 added one (docs/analytics.md, session 6). Never acts at sampling intervals of 30 s or more.
SENSOR_POLICY = AlarmPolicy(
    threshold_quantile=0.995, on_delay_s=5.0, off_delay_s=30.0, off_evidence_power=1.0
)
# Alarm policy of slow series (analytics.seasonal): the score is already a residual smoothed
# over hours, so no on-delay; six hours below the clear level before the alarm clears, so a
# failing air conditioner's cool nights do not split one failure into a daily alarm.
SEASONAL_POLICY = AlarmPolicy(threshold_quantile=0.995, on_delay_s=0.0, off_delay_s=6 * 3600.0)


@dataclass(frozen=True)
class Decision:
    """What the scorer concluded for one row."""

    time_s: float
    score: float
    threshold: float
    state: AlarmState
    alarm: bool
    health: float
    # (sensor, share of the anomaly) for the top contributors, largest first.
    top_sensors: tuple[tuple[str, float], ...]
    # Whether the adaptive baseline skipped this row (elevated score or alarm).
    baseline_frozen: bool
    # Running state (analytics.running): "running", "stopped" (not scored, nothing learned)
    # or "restarting" (warm-up after a stop: no alarm, baselines follow).
    running: str = "running"


Explain = Callable[[], tuple[tuple[str, float], ...]]


class LazyDecision(Decision):
    """A ``Decision`` whose ``top_sensors`` is worked out on first access, then kept.

    The scorer returns these: the explanation (shares, a sort, a tuple of rounded floats)
    costs half as much again as the rest of the row (~20 of ~60 us when read), and the live
    path reads it only for an alarm and for the status item of each window's last row. Equal
    to, and hashed as, the ``Decision`` with the same fields; ``dataclasses.replace`` works on
    it (the copy carries the explanation worked out).
    """

    def __init__(
        self,
        *,
        explain: Explain | None = None,
        top_sensors: tuple[tuple[str, float], ...] | None = None,
        time_s: float,
        score: float,
        threshold: float,
        state: AlarmState,
        alarm: bool,
        health: float,
        baseline_frozen: bool,
        running: str = "running",
    ) -> None:
        fields = self.__dict__
        fields["time_s"], fields["score"], fields["threshold"] = time_s, score, threshold
        fields["state"], fields["alarm"], fields["health"] = state, alarm, health
        fields["baseline_frozen"], fields["running"] = baseline_frozen, running
        if top_sensors is not None:  # given (``dataclasses.replace`` passes every field)
            fields["top_sensors"] = top_sensors
        elif explain is None:
            raise TypeError("LazyDecision needs explain or top_sensors")
        else:
            fields["_explain"] = explain

    def __getattr__(self, name: str) -> tuple[tuple[str, float], ...]:
        # Only called for attributes not set: ``top_sensors`` until its first access.
        if name != "top_sensors" or "_explain" not in self.__dict__:
            raise AttributeError(name)
        explain: Explain = self.__dict__["_explain"]
        top = self.__dict__["top_sensors"] = explain()
        return top

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return _decision_fields(self) == _decision_fields(other)

    def __hash__(self) -> int:
        return hash(_decision_fields(self))


def _decision_fields(decision: Decision) -> tuple[object, ...]:
    return tuple(getattr(decision, f.name) for f in dataclasses.fields(Decision))


def _top_sensors(
    sensors: Sequence[str], top_k: int, shares_of: Callable[[FloatArray], FloatArray], x: FloatArray
) -> tuple[tuple[str, float], ...]:
    """The ``top_k`` sensors by share of the anomaly ``shares_of(x)``, largest first."""
    shares = shares_of(x)[0]
    order = np.argsort(shares)[::-1][:top_k]
    return tuple((sensors[i], round(float(shares[i]), 4)) for i in order)


class StreamingScorer:
    """Fit on normal rows, then ``update`` row by row (time order, no look-ahead)."""

    def __init__(
        self,
        *,
        features: CausalFeatures | None = None,
        policy: AlarmPolicy | None = None,
        warmup_s: float = 30.0,
        top_k: int = 3,
        relations: bool = True,
        relation_min_r2: float = 0.5,
        sensor_levels: SensorLevels | None = None,
        short_window_fractions: tuple[float, ...] = (0.5,),
        envelope: TrainingEnvelope | None = None,
        running: RunningState | None = None,
        seasonal: SeasonalLevels | None = None,
    ) -> None:
        # Baseline of slow series (analytics.seasonal), used instead of every other channel
        # when the training data is slow (``slow_series``); None = the default.
        self.seasonal = seasonal
        # Long-horizon channel against the frozen training envelope (analytics.level); idle
        # unless training spans its ``min_span_s``.
        self.envelope = envelope
        # Stop detection (analytics.running); None = the default. RunningState(off_fraction=0)
        # never sees a stop (the scorer as it was before stops were known).
        self.running = running
        self.sensor_levels = sensor_levels
        # Shorter scales of the level channel (a multi-window scan), as fractions of its
        # window: a step is seen sooner by a short window, a slow change by the long one;
        # () = the long window alone. The default is one scale at half the window (10 of 20 s),
        # the usual dyadic step of a scan: a shift that has lasted anywhere between the two
        # windows is seen by one of them at >= 1/sqrt(2) of the best window's signal-to-noise.
        # A quarter (5 s) was measured to alarm more on normal noise (docs/analytics.md,
        # session 6b). At readings 20 s apart or more both windows hold one sample and the
        # short scale scores exactly as the long one: it changes nothing there.
        self.short_window_fractions = short_window_fractions
        self.relations = relations
        self.relation_min_r2 = relation_min_r2
        # Causal features (analytics.features) feed the relation channel.
        self.features = features
        self.policy = policy
        self.warmup_s = warmup_s
        self.top_k = top_k

    # -- training -----------------------------------------------------------------------------

    def fit(self, values: npt.ArrayLike, times_s: npt.ArrayLike, sensors: Sequence[str]) -> Self:
        """Learn normal behaviour from rows (n_rows, n_sensors) with times in seconds."""
        vals = np.asarray(values, dtype=np.float64)
        times = np.asarray(times_s, dtype=np.float64)
        if vals.ndim != 2 or vals.shape[1] != len(sensors) or len(times) != len(vals):
            raise ValueError("values must be (n_rows, len(sensors)) with one time per row")
        self.sensors_ = list(sensors)
        self.seasonal_: SeasonalLevels | None = None
        if slow_series(times, len(self.sensors_)):
            return self._fit_seasonal(vals, times)
        self.features_ = copy.deepcopy(self.features) if self.features else CausalFeatures()
        self.features_.reset()
        feats = self.features_.transform(vals, times)
        self.envelope_ = copy.deepcopy(self.envelope or TrainingEnvelope()).fit(vals, times)
        self.running_ = copy.deepcopy(self.running or RunningState()).fit(vals, self.sensors_)
        return self._fit_sensor_levels(vals, times, feats)

    def _fit_seasonal(self, vals: FloatArray, times: FloatArray) -> Self:
        """Slow series: the seasonal baseline alone (threshold by the same tail rule)."""
        self.policy_ = self.policy or SEASONAL_POLICY
        seasonal = copy.deepcopy(self.seasonal or SeasonalLevels()).fit(vals, times)
        self.seasonal_ = seasonal
        gauss = NormalDist().inv_cdf(
            1.0 - (1.0 - self.policy_.threshold_quantile) / (2 * len(self.sensors_))
        )
        # Not "never below the highest training score" as the machine channels: a month of
        # hourly residuals smoothed over hours holds only a few dozen independent values.
        self.threshold_ = max(
            baseline_threshold(seasonal.training_scores_, self.policy_),
            gauss * self.policy_.threshold_margin,
        )
        self.training_scores_ = seasonal.row_scores_
        self.alarm_ = AlarmStateMachine(self.threshold_, self.policy_)
        logger.info(
            "fitted a seasonal baseline on %d rows, threshold %.4g", len(vals), self.threshold_
        )
        return self

    def _update_seasonal(
        self, seasonal: SeasonalLevels, row: npt.ArrayLike, time_s: float
    ) -> Decision:
        z = seasonal.update(row, time_s)
        score = float(np.abs(z).max())
        state = self.alarm_.update(score, time_s)
        sq = z**2
        shares = sq / sq.sum() if sq.sum() > 0 else sq
        order = np.argsort(shares)[::-1][: self.top_k]
        return Decision(
            time_s=time_s,
            score=score,
            threshold=self.threshold_,
            state=state,
            alarm=self.alarm_.alarm,
            health=health_score(score, self.threshold_),
            top_sensors=tuple((self.sensors_[i], round(float(shares[i]), 4)) for i in order),
            baseline_frozen=bool((np.abs(z) >= seasonal.freeze_z).any()),
        )

    def _fit_sensor_levels(self, vals: FloatArray, times: FloatArray, feats: FloatArray) -> Self:
        # Per-sensor level channel, its threshold (training-score quantile rule) and relations.
        self.policy_ = self.policy or SENSOR_POLICY
        template = self.sensor_levels or SensorLevels()
        self.level_ = copy.deepcopy(template).fit(vals, times)
        self.threshold_ = self._level_threshold(self.level_)
        # The short scales: the same channel with shorter windows, each with its own threshold
        # from its own training scores by the same rule, so noise cannot alarm on a scale more
        # than that scale's tail rule allows.
        self.short_levels_: list[tuple[SensorLevels, float]] = []
        for fraction in self.short_window_fractions:
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"short window fractions must be in (0, 1), got {fraction}")
            short = copy.deepcopy(template)
            short.window_s = template.window_s * fraction
            short.fit(vals, times)
            self.short_levels_.append((short, self._level_threshold(short)))
        self.training_scores_ = self.level_.row_scores_
        keep = times - times[0] >= self.warmup_s
        self._fit_relations(feats[keep] if keep.sum() >= max(20, len(times) // 2) else feats)
        self.alarm_ = AlarmStateMachine(self.threshold_, self.policy_)
        logger.info("fitted sensor levels on %d rows, threshold %.4g", len(vals), self.threshold_)
        return self

    def _level_threshold(self, level: SensorLevels) -> float:
        """Threshold of a fitted level channel from its own training scores.

        The training tail, but never below the Gaussian one (few effective training samples)
        nor below the highest training score: the baseline is healthy by assumption, so
        nothing it did is alarm-worthy. With a few minutes of training the tail rule is the
        higher one; with a week, the week's rare moments (a big set-point step, a hot
        afternoon at full load) would otherwise alarm again every week.
        """
        gauss = level.gaussian_quantile(self.policy_.threshold_quantile)
        return max(
            baseline_threshold(level.training_scores_, self.policy_),
            gauss * self.policy_.threshold_margin,
            float(np.max(level.training_scores_)) * self.policy_.threshold_margin,
        )

    def _levels(self, feats: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(level, high-pass level) columns per sensor from feature rows."""
        n, per = len(self.sensors_), len(PER_SENSOR)
        block = feats[:, : n * per]
        return block[:, 0::per], block[:, 1::per]

    def _fit_relations(self, feats: FloatArray) -> None:
        """Fit the relation channel and its own threshold (on the same quantile rule)."""
        self.relations_: RelationResiduals | None = None
        if not self.relations or len(self.sensors_) < 2:
            return
        levels, highpass = self._levels(feats)
        rel = RelationResiduals(self.relation_min_r2).fit(highpass, levels)
        if not rel.scored_.any():
            return
        self.relations_ = rel
        # A residual of 3 robust sd is the least we call broken, whatever 400 rows showed; and
        # never below the highest training residual (the healthy baseline's own worst moment).
        train_scores = rel.score_samples(levels)
        self.relation_threshold_ = max(
            baseline_threshold(train_scores, self.policy_),
            9.0,
            float(train_scores.max()) * self.policy_.threshold_margin,
        )

    def _relation_ratio(self, levels: FloatArray) -> float:
        """Relation score of a level row as a fraction of its threshold (0 without relations)."""
        if self.relations_ is None:
            return 0.0
        return self.relations_.score_row(levels) / self.relation_threshold_

    # -- streaming ----------------------------------------------------------------------------

    def update(self, row: npt.ArrayLike, time_s: float) -> Decision:
        """Score one row (values in ``sensors_`` order) and advance the alarm state."""
        seasonal = getattr(self, "seasonal_", None)  # models pickled before it existed: none
        if seasonal is not None:
            return self._update_seasonal(seasonal, row, time_s)
        values = np.asarray(row, dtype=np.float64)
        # The level mode reads only the features' levels (the relation channel's input).
        levels = self.features_.update_levels(values, time_s)
        running = getattr(self, "running_", None)  # models pickled before it existed
        if running is not None and running.update(values, time_s):
            return self._stopped(time_s)
        return self._update_sensor_levels(values, time_s, levels)

    def _update_sensor_levels(self, row: FloatArray, time_s: float, levels: FloatArray) -> Decision:
        running = getattr(self, "running_", None)
        if running is not None and running.settling(time_s):
            return self._restarting(row, time_s)
        rel_ratio = self._relation_ratio(levels)
        # Regime awareness: while the relations among sensors are broken nothing is learned.
        broken = rel_ratio >= self.policy_.elevated_ratio
        z, level_score = self.level_.advance(row, time_s, learn=not broken)
        if math.isnan(level_score):  # the mask's answer (a NaN z freezes nothing by itself)
            frozen = bool(broken or (np.abs(z) >= self.level_.freeze_z).any())
        else:
            frozen = broken or level_score >= self.level_.freeze_z
        scales: list[tuple[FloatArray, float]] = [(z, 1.0)]
        for short, short_threshold in getattr(self, "short_levels_", ()):  # older pickles: none
            # Every scale against its own threshold, in the long scale's units; the alarm is
            # explained by the scale that set the level score. (Scaling by positive constants
            # keeps the order of the |z|, so the largest is scaled as one float.)
            short_z, short_peak = short.advance(row, time_s, learn=not broken)
            short_max = short_peak / short_threshold * self.threshold_
            scales.append((short_z, short_threshold))
            if short_max > level_score:
                level_score, z = short_max, short_z
        level_score = self._held_level_score(scales, level_score)
        rel_score = rel_ratio * self.threshold_
        env_z: FloatArray | None = None
        env_score = 0.0
        if self.envelope_.active_:  # idle (a short baseline): scores 0, nothing to advance
            env_z = self.envelope_.update(row, time_s)
            env_score = float(env_z.max()) / self.envelope_.threshold * self.threshold_
        score = max(level_score, rel_score, env_score)
        state = self.alarm_.update(score, time_s)
        if state == AlarmState.NORMAL and self.__dict__.get("_members_set", True):
            self.members_[:] = False
            self._members_set = False
        # Explain the alarm by the channel that set the score (worked out when first read).
        explained: tuple[Callable[[FloatArray], FloatArray], FloatArray] = (
            self.level_.contributions,
            z,
        )
        if env_z is not None and env_score >= max(level_score, rel_score) and env_score > 0:
            explained = (self.level_.contributions, env_z)
        elif self.relations_ is not None and rel_score > level_score:
            explained = (self.relations_.contributions, levels.reshape(1, -1))
        return LazyDecision(
            explain=functools.partial(_top_sensors, self.sensors_, self.top_k, *explained),
            time_s=time_s,
            score=score,
            threshold=self.threshold_,
            state=state,
            alarm=self.alarm_.alarm,
            health=health_score(score, self.threshold_),
            baseline_frozen=frozen,
        )

    def _held_level_score(self, scales: list[tuple[FloatArray, float]], peak: float) -> float:
        """Level score with hysteresis per sensor: only a sensor that has crossed the
        threshold itself since the alarm began can hold the alarm up.

        One asset alarm aggregates one condition per sensor, and each condition has its own
        deadband (ISA-18.2): a sensor that never reached the threshold can raise the alarm by
        reaching it, but not keep an alarm raised by another sensor from clearing by sitting
        between the clear level and the threshold (SKAB valve2: an accelerometer at 0.85 of the
        threshold held a temperature alarm up long after the temperature had recovered).

        ``scales``: (z, threshold) of each scale, the long one first (whose z is in its own
        units, the others' are scaled to them here); ``peak``: the largest scaled |z| of them
        all, which is the score when no alarm is up.
        """
        members = getattr(self, "members_", None)
        n = len(scales[0][0])
        if members is None or len(members) != n:  # models pickled before it
            members = self.members_ = np.zeros(n, dtype=bool)
        normal = self.alarm_.state == AlarmState.NORMAL
        if normal and peak < self.threshold_:  # the usual row: no sensor crosses, nothing held
            return peak
        per_sensor = np.abs(scales[0][0])
        for short_z, short_threshold in scales[1:]:
            per_sensor = np.maximum(per_sensor, np.abs(short_z) / short_threshold * self.threshold_)
        members |= per_sensor >= self.threshold_
        self._members_set = True  # (or may be: cleared with the next normal row)
        if normal:
            return float(per_sensor.max())
        cap = self.policy_.clear_ratio * self.threshold_ * 0.999
        return float(np.where(members, per_sensor, np.minimum(per_sensor, cap)).max())

    def _stopped(self, time_s: float) -> Decision:
        """A stopped machine: nothing is scored or learned, and no equipment alarm stands.

        The stop is an operating state; an alarm that was raised just before it (the ramp
        down) clears through the off-delay (at the next row under ``SENSOR_POLICY``, whose
        off-delay weighting treats a score of 0 as a condition that is gone).
        """
        self.envelope_.pause(time_s)
        self.level_.pause(time_s)
        for short, _ in getattr(self, "short_levels_", ()):
            short.pause(time_s)
        state = self.alarm_.update(0.0, time_s)
        return Decision(
            time_s=time_s,
            score=0.0,
            threshold=self.threshold_,
            state=state,
            alarm=self.alarm_.alarm,
            health=health_score(0.0, self.threshold_),
            top_sensors=(),
            baseline_frozen=True,
            running="stopped",
        )

    def _restarting(self, row: npt.ArrayLike, time_s: float) -> Decision:
        """Warm-up after a stop: the level baselines follow, the envelope waits, no alarm."""
        self.envelope_.pause(time_s)
        z = self.level_.track(row, time_s)
        for short, _ in getattr(self, "short_levels_", ()):
            short.track(row, time_s)
        if self.level_.score_samples(z)[0] < self.policy_.elevated_ratio * self.threshold_:
            self.running_.calm(time_s)
        state = self.alarm_.update(0.0, time_s)
        shares = self.level_.contributions(z)[0]
        order = np.argsort(shares)[::-1][: self.top_k]
        return Decision(
            time_s=time_s,
            score=0.0,
            threshold=self.threshold_,
            state=state,
            alarm=self.alarm_.alarm,
            health=health_score(0.0, self.threshold_),
            top_sensors=tuple((self.sensors_[i], round(float(shares[i]), 4)) for i in order),
            baseline_frozen=False,
            running="restarting",
        )

    def baseline_shift(self) -> dict[str, float]:
        """Largest baseline move per sensor since training, in training robust-scale units."""
        seasonal = getattr(self, "seasonal_", None)
        shift = self.level_.baseline_shift() if seasonal is None else seasonal.baseline_shift()
        return {s: round(float(v), 3) for s, v in zip(self.sensors_, shift, strict=True)}
