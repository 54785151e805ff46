"""One monitored asset: baseline buffer until fitted, then scorer, instrument rules and alarm state.

Rows go through the instrument rules first. A sensor the rules suspect (condition holding or
alert raised) is left out of the model's input by holding its last good value (the scorer has
no per-sensor mask in its interface), and a model alarm whose leading sensor is suspect is
reported as the instrument problem it is: no ``equipment_anomaly`` post for it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analytics.alerts_client import alert_body, instrument_body
from analytics.meters import MeterBook, MeterCounter
from analytics.model import AssetModel
from analytics.model_store import Baseline
from analytics.rules import ASSET, STALE, InstrumentRules, RuleChange
from analytics.scorer import Decision
from analytics.settings import MeterRule
from analytics.source import AssetKey, AssetWindow
from analytics.status_client import status_item

logger = logging.getLogger(__name__)

Points = list[tuple[int, dict[str, float]]]
# A model alarm is blamed on the instruments when doubtful sensors lead it or carry at least
# this share of it (a broken relation spreads the anomaly over the sensors in that relation).
BLAME_SHARE = 1 / 3
# Fits a baseline from buffered points: (baseline, fitted scorer), or raises ValueError.
Fitter = Callable[[AssetKey, Points], tuple[Baseline, AssetModel]]


@dataclass
class FeedResult:
    """What one window did: rows buffered/scored, alert posts, equipment alarm changes."""

    buffered: int = 0
    scored: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    # (time_ns, raised?) of each equipment alarm change, for the labels of own alarm periods.
    equipment: list[tuple[int, bool]] = field(default_factory=list)
    instrument: int = 0  # instrument alert changes
    reclassified: int = 0  # model alarms turned into instrument problems
    fitted: bool = False


class AssetMonitor:
    """Buffer → fit → score, with instrument rules beside the model."""

    def __init__(
        self,
        key: AssetKey,
        train_after_s: float,
        rules: InstrumentRules,
        *,
        meters: MeterBook | None = None,
        meter_max_gap_s: float = 300.0,
        meter_min_baseline_s: float = 86400.0,
        meter_rules: Sequence[MeterRule] = (),
    ) -> None:
        self.key = key
        # Running hours and starts (analytics.meters): counted once a baseline exists.
        self.meter_book = meters
        self.meter_max_gap_s = meter_max_gap_s
        self.meter_min_baseline_s = meter_min_baseline_s
        self.meter_rules = tuple(meter_rules)
        self.meters: MeterCounter | None = None
        self.train_after_ns = int(train_after_s * 1e9)
        self.rules = rules
        self.scorer: AssetModel | None = None
        self.sensors: tuple[str, ...] = ()
        self.alarm = False  # equipment alarm as posted
        # The source said the asset went offline (a Sparkplug death): silence is no fault.
        self.source_offline = False
        self.model_alarm = False  # the scorer's own alarm (may be an instrument problem)
        self.decision: Decision | None = None
        self.fitted_at_s: float | None = None
        self.baseline_span_s = 0.0  # how much time the installed model was fitted on
        self.baseline_start_s = 0.0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._skip_until_s = -math.inf
        self._buffer: Points = []
        # A first fit on stored history is queued (DetectorService): the live buffer waits for
        # its outcome instead of fitting on its own first train_after_s.
        self.awaiting_history = False
        self._good: dict[str, float] = {}
        self._blamed = False

    def install(
        self,
        baseline: Baseline,
        scorer: AssetModel,
        fitted_at_s: float,
        scored_until_s: float | None = None,
    ) -> None:
        """Use a fitted scorer; rows it has already seen (baseline, warm-up) are not fed again."""
        self.scorer, self.sensors, self.fitted_at_s = scorer, baseline.sensors, fitted_at_s
        self.baseline_span_s = baseline.end_s - baseline.start_s
        self.baseline_start_s = baseline.start_s
        self.rules.learn(baseline.sensors, baseline.times_s, baseline.values)
        self._good.update(zip(baseline.sensors, baseline.values[-1].tolist(), strict=True))
        self._skip_until_s = max(baseline.end_s, scored_until_s or -math.inf)
        self._buffer = []
        self.awaiting_history = False
        self._install_meters(baseline)

    def _install_meters(self, baseline: Baseline) -> None:
        """A counter judged on this baseline; a new asset's count starts with the baseline."""
        if self.meter_book is None:
            return
        known = self.meter_book.known(self.key)
        if not known and baseline.end_s - baseline.start_s < self.meter_min_baseline_s:
            # A first hour at night shows the machine stopped: its running level is unknown,
            # and counting with a wrong one could not be undone (meters never go down).
            self.meters = None
            return
        state, new = self.meter_book.state(self.key)
        counter = MeterCounter(
            baseline.sensors,
            baseline.values,
            state,
            max_gap_s=self.meter_max_gap_s,
            rules=self.meter_rules,
        )
        self.meters = counter if counter.has_indicators else None
        if self.meters is not None and new:
            times_ns = (baseline.times_s * 1e9).round().astype("int64").tolist()
            for t, row in zip(times_ns, baseline.values.tolist(), strict=True):
                self.meters.count(t, row)
            self.meter_book.touch(self.key)

    def feed(self, window: AssetWindow, fitter: Fitter) -> FeedResult:
        """Take new rows in time order; alert posts and counts for this window."""
        out = FeedResult()
        sensors = window.sensors
        # Python floats once per window: a numpy scalar per cell cost ~2 µs a row more.
        for t, values in zip(window.times_ns.tolist(), window.values.tolist(), strict=True):
            row = {s: v for s, v in zip(sensors, values, strict=True) if math.isfinite(v)}
            self.first_ns = t if self.first_ns is None else self.first_ns
            self.last_ns = t
            self._rules(t, self.rules.observe(t / 1e9, row), out)
            if self.meters is not None:
                self.count(t, row)
            if self.scorer is None:
                self._buffer.append((t, row))
                out.buffered += 1
                if t - self._buffer[0][0] >= self.train_after_ns and not self.awaiting_history:
                    self._fit(fitter, out)
            elif t / 1e9 > self._skip_until_s:
                self._score(t, row, out)
                out.scored += 1
        return out

    def take_buffer(self) -> Points:
        """The rows buffered while no model was installed (for ``catch_up`` once one is)."""
        rows, self._buffer = self._buffer, []
        return rows

    def catch_up(self, rows: Points) -> FeedResult:
        """Score the buffered rows a newly installed model has not seen (after its baseline),
        and count them into its meters."""
        out = FeedResult()
        if self.scorer is None:
            return out
        for t, row in rows:
            if self.meters is not None:
                self.count(t, row)  # rows the baseline counted already count nothing again
            if t / 1e9 > self._skip_until_s:
                self._score(t, row, out)
                out.scored += 1
        return out

    def count(self, t: int, row: dict[str, float]) -> None:
        """Count one reading into the asset's meters (a repeat or an older one counts nothing)."""
        assert self.meters is not None
        assert self.meter_book is not None
        values = [row.get(s, math.nan) for s in self.meters.sensors]
        if self.meters.count(t, values):
            self.meter_book.touch(self.key)

    def check_stale(self, now_ns: int) -> FeedResult:
        """The wall-clock rule: is the whole asset silent? Not when its source said it went
        offline (an edge node's death): then the silence is known, not a fault."""
        out = FeedResult()
        last = None if self.last_ns is None else self.last_ns / 1e9
        if self.source_offline and last is not None:
            last = now_ns / 1e9  # silent on purpose: a stale condition clears
        self._rules(now_ns, self.rules.check_asset(now_ns / 1e9, last), out)
        return out

    def abandon_baseline(self) -> None:
        """Forget buffered rows after a failed fit; the next span is tried afresh."""
        self._buffer = []

    def status(self, now_ns: int, learning_until_s: float) -> dict[str, Any]:
        """This asset's status item (see status_client)."""
        active = self.rules.active()
        observed = self.last_ns if self.last_ns is not None else now_ns
        if self.source_offline or (STALE, ASSET) in active:
            why = "no data: edge node offline" if self.source_offline else "no data"
            return status_item(self.key, "stale", observed, self.decision, message=why)
        if self.scorer is None:
            # While a fit on stored history runs, the live fallback's end is the latest ETA.
            until = None if self.first_ns is None else int(self.first_ns + learning_until_s * 1e9)
            fitting = "fitting on stored history" if self.awaiting_history else None
            return status_item(
                self.key, "learning", observed, message=fitting, learning_until_ns=until
            )
        if self.alarm:
            return status_item(self.key, "alarm", observed, self.decision)
        if active or self.model_alarm:
            text = ", ".join(f"{kind.removeprefix('instrument_')} {s}" for kind, s in active)
            return status_item(self.key, "instrument", observed, self.decision, message=text)
        if self.decision is not None and self.decision.running != "running":
            # A stop is an operating state, not a problem: normal, and says so.
            return status_item(
                self.key, "normal", observed, self.decision, message=self.decision.running
            )
        return status_item(self.key, "normal", observed, self.decision)

    def _fit(self, fitter: Fitter, out: FeedResult) -> None:
        start = self._buffer[0][0]
        train = [(t, r) for t, r in self._buffer if t - start <= self.train_after_ns]
        rest = self._buffer[len(train) :]
        self._buffer = []
        baseline, scorer = fitter(self.key, train)
        self.install(baseline, scorer, fitted_at_s=rest[0][0] / 1e9 if rest else train[-1][0] / 1e9)
        out.fitted = True
        logger.info(
            "%s/%s: fitted on %d rows of %s",
            *self.key,
            len(baseline.times_s),
            ", ".join(self.sensors),
        )
        for t, row in rest:
            if t / 1e9 > self._skip_until_s:
                self._score(t, row, out)
                out.scored += 1

    def _score(self, t: int, row: dict[str, float], out: FeedResult) -> None:
        assert self.scorer is not None
        suspect = self.rules.suspect()
        # A doubtful sensor keeps its last good value, so the model judges the machine only.
        self._good.update((s, v) for s, v in row.items() if s not in suspect)
        decision = self.scorer.update([self._good[s] for s in self.sensors], t / 1e9)
        self.decision = decision
        self.model_alarm = decision.alarm
        blamed = False
        if decision.alarm and suspect:
            # Only an alarm can be blamed (and only on suspects): the explanation is not read
            # on the other rows, so a scorer may compute it lazily.
            top = decision.top_sensors
            leading = top[0][0] if top else None
            doubtful = sum(share for s, share in top if s in suspect)
            blamed = leading in suspect or doubtful >= BLAME_SHARE
        if blamed and not self._blamed:
            out.reclassified += 1
        self._blamed = blamed
        equipment = decision.alarm and not blamed
        if equipment == self.alarm:
            return
        self.alarm = equipment
        out.equipment.append((t, equipment))
        body = alert_body(self.key, t, decision)
        body["state"] = "active" if equipment else "normal"  # a blamed alarm clears the anomaly
        if blamed:
            body["message"] = (
                f"{self.key[1]}: model alarm led by doubtful sensors "
                f"({', '.join(sorted(suspect))}), reported as an instrument problem"
            )
        out.posts.append(body)

    def _rules(self, t_ns: int, changes: list[RuleChange], out: FeedResult) -> None:
        for c in changes:
            out.instrument += 1
            logger.info(
                "%s/%s: %s %s %s", *self.key, c.kind, c.sensor, "raised" if c.active else "cleared"
            )
            out.posts.append(
                instrument_body(
                    self.key, c.kind, c.sensor, active=c.active, time_ns=t_ns, message=c.message
                )
            )
