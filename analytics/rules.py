"""Instrument rules beside the model: stale data, stuck sensors, values outside physical limits.

These say "the measurement is wrong", not "the machine is failing". They run per row in the
data's own time (a sensor missing for ``stale_sensor_s``, a flat run while correlated
neighbours move, a value outside the configured min/max) plus one wall-clock check per tick
(the whole asset silent for ``stale_asset_s``). Each condition is debounced with on/off delays
and yields a ``RuleChange`` when its alert is raised or cleared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.settings import RuleSettings
from analytics.spikes import SpikeFilter

STALE = "instrument_stale"
STUCK = "instrument_stuck"
OUT_OF_RANGE = "instrument_out_of_range"
SPIKES = "instrument_spikes"
ASSET = "asset"  # failure_mode of a whole-asset silence

Limits = Mapping[str, tuple[float | None, float | None]]
# A sensor missing for this many of its usual sample intervals is already doubtful for the model
# (the service would otherwise feed it a held value), long before the stale alert is due.
SUSPECT_GAPS = 5.0


@dataclass(frozen=True)
class RuleChange:
    """An instrument alert raised (active) or cleared at time_s, on one sensor or the asset."""

    kind: str
    sensor: str
    active: bool
    time_s: float
    message: str


class Debounce:
    """On/off delays for one condition (times in seconds, any monotone clock)."""

    def __init__(self, on_delay_s: float, off_delay_s: float) -> None:
        self.on_delay_s = on_delay_s
        self.off_delay_s = off_delay_s
        self.active = False
        self.condition = False
        self._since: float | None = None

    def update(self, condition: bool, t: float) -> bool | None:
        """Feed the condition at t; the new alert state when it changed, else None."""
        if condition != self.condition:
            self.condition = condition
            self._since = t
        if condition == self.active or self._since is None:
            return None
        delay = self.on_delay_s if condition else self.off_delay_s
        if t - self._since >= delay:
            self.active = condition
            return condition
        return None


def longest_flat_run(
    times: npt.NDArray[np.float64], col: npt.NDArray[np.float64], tol: float
) -> float:
    """Longest span (s) over which a column stays within tol of the run's first value."""
    best, start, ref = 0.0, 0, math.nan
    for k in range(len(col)):
        v = col[k]
        if not math.isfinite(v):
            continue
        if math.isnan(ref) or abs(v - ref) > tol:
            start, ref = k, v
        else:
            best = max(best, float(times[k] - times[start]))
    return best


class InstrumentRules:
    """The instrument rules of one asset; ``learn`` the baseline, then ``observe`` rows."""

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings
        self.limits: dict[str, tuple[float | None, float | None]] = {}
        self._tol: dict[str, float] = {}
        self._stuck_after: dict[str, float] = {}
        self._neighbours: dict[str, tuple[str, ...]] = {}
        self._last_seen: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._now = -math.inf
        self._flat_start: dict[str, float] = {}
        self._flat_ref: dict[str, float] = {}
        self._debounce: dict[tuple[str, str], Debounce] = {}
        # Isolated outliers: held for the model one sample, counted into SPIKES alerts.
        self.spikes = SpikeFilter()
        self._held: set[str] = set()

    @property
    def learned(self) -> bool:
        """Whether a baseline was learned (stuck and sensor-stale need one)."""
        return bool(self._tol)

    def learn(self, sensors: Sequence[str], times_s: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Learn per-sensor flat-run lengths and correlated neighbours from baseline rows."""
        times = np.asarray(times_s, dtype=np.float64)
        vals = np.asarray(values, dtype=np.float64)
        span = float(times[-1] - times[0]) if len(times) else 0.0
        q75, q25 = np.nanpercentile(vals, [75, 25], axis=0)
        spread = (q75 - q25) / 1.349
        std = np.nanstd(vals, axis=0)
        s = self.settings
        self._tol, self._stuck_after = {}, {}
        for j, name in enumerate(sensors):
            scale = float(spread[j]) if spread[j] > 0 else float(std[j])
            if not scale > 0:
                continue  # flat in the whole baseline: "stuck" means nothing for it
            tol = s.stuck_tolerance * scale
            run = longest_flat_run(times, vals[:, j], tol)
            if run >= 0.5 * span:
                continue  # mostly flat in the baseline (a setpoint): not judged
            self._tol[name] = tol
            self._stuck_after[name] = max(s.stuck_min_s, s.stuck_factor * run)
        corr = _correlations(vals)
        self._neighbours = {}
        for j, name in enumerate(sensors):
            near = [
                other
                for i, other in enumerate(sensors)
                if i != j and other in self._tol and abs(corr[j, i]) >= s.neighbour_corr
            ]
            self._neighbours[name] = tuple(near)
        self.spikes.learn(sensors, vals, self._neighbours)
        for j, name in enumerate(sensors):
            self._last_seen.setdefault(name, float(times[-1]) if len(times) else 0.0)
            seen = times[np.isfinite(vals[:, j])]
            if len(seen) > 1:
                self._interval[name] = float(np.median(np.diff(seen)))

    def set_limits(self, limits: Limits) -> None:
        """Physical min/max per sensor (None = no limit on that side)."""
        self.limits = dict(limits)

    def observe(self, t: float, row: Mapping[str, float]) -> list[RuleChange]:
        """Feed one row (finite values only) at time t (s); the alert changes it caused."""
        # Hot path (every row of every asset): _step is only called when a condition holds or
        # its debounce exists, and messages are formatted only when an alert changes.
        changes: list[RuleChange] = []
        self._now = max(self._now, t)
        debounce = self._debounce
        self._held = self.spikes.observe(t, row)
        for name in self.spikes.counted():
            if self.spikes.spiking(name) or (SPIKES, name) in debounce:
                # One instrument problem per sensor: a sensor already stale, stuck or out of
                # range (a wrong scale multiplies its noise too) is not also called spiking.
                spiking = self.spikes.spiking(name) and not self._doubtful(name)
                n = self.spikes.recent(name)
                text = ("%s: %d isolated outliers in %.0f s", name, n, self.spikes.window_s)
                changes.extend(self._step(SPIKES, name, spiking, t, text))
        for name, value in row.items():
            self._last_seen[name] = t
            limit = self.limits.get(name)
            if limit is not None:
                lo, hi = limit
                bad = (lo is not None and value < lo) or (hi is not None and value > hi)
                if bad or (OUT_OF_RANGE, name) in debounce:
                    low, high = _fmt(lo, "-inf"), _fmt(hi, "inf")
                    oor = ("%s = %.6g outside [%s, %s]", name, value, low, high)
                    changes.extend(self._step(OUT_OF_RANGE, name, bad, t, oor))
            tol = self._tol.get(name)
            if tol is not None:
                ref = self._flat_ref.get(name)
                if ref is None or abs(value - ref) > tol:
                    self._flat_ref[name], self._flat_start[name] = value, t
        for name, after in self._stuck_after.items():
            start = self._flat_start.get(name)
            stuck = start is not None and t - start >= after and self._stuck(name, t, start)
            if stuck or (STUCK, name) in debounce:
                flat = self._flat_ref.get(name, math.nan)
                held = ("%s flat at %.6g for %.0f s", name, flat, t - (start or t))
                changes.extend(self._step(STUCK, name, stuck, t, held))
        if self._tol or self._interval:
            limit_s = self.settings.stale_sensor_s
            for name, seen in self._last_seen.items():
                gone = t - seen
                if gone >= limit_s or (STALE, name) in debounce:
                    gap = ("no %s reading for %.0f s", name, gone)
                    changes.extend(self._step(STALE, name, gone >= limit_s, t, gap))
        return changes

    def check_asset(self, now_s: float, last_point_s: float | None) -> list[RuleChange]:
        """Whole-asset silence by the wall clock (called once per tick)."""
        if last_point_s is None:
            return []
        gone = now_s - last_point_s
        text = ("no reading from the asset for %.0f s", gone)
        return self._step(STALE, ASSET, gone >= self.settings.stale_asset_s, now_s, text)

    def suspect(self) -> set[str]:
        """Sensors whose readings are doubtful now: a condition holds or its alert is active."""
        # A spiking sensor's other samples are good: only its held outlier is doubtful.
        flagged = {
            sensor
            for (kind, sensor), d in self._debounce.items()
            if sensor != ASSET and kind != SPIKES and (d.condition or d.active)
        }
        missing = {
            name
            for name, step in self._interval.items()
            if self._now - self._last_seen.get(name, self._now) > SUSPECT_GAPS * step
        }
        return flagged | missing | self._held

    def _doubtful(self, name: str) -> bool:
        """Whether a rule other than the spike count holds or has raised on the sensor."""
        return any(
            kind != SPIKES and (d.condition or d.active)
            for (kind, sensor), d in self._debounce.items()
            if sensor == name
        )

    def active(self) -> list[tuple[str, str]]:
        """(kind, sensor) of every raised instrument alert."""
        return sorted(key for key, d in self._debounce.items() if d.active)

    def _stuck(self, name: str, t: float, start: float) -> bool:
        if t - self._last_seen.get(name, -math.inf) >= self.settings.stale_sensor_s:
            return False  # absent, not flat: the stale rule speaks for it
        # Stuck only while a correlated neighbour moved during the flat run (a stopped machine
        # leaves every sensor flat); without learned neighbours any judged sensor counts.
        others = self._neighbours.get(name) or tuple(n for n in self._tol if n != name)
        return any(self._flat_start.get(other, math.inf) > start for other in others)

    def _step(
        self, kind: str, sensor: str, condition: bool, t: float, text: tuple[Any, ...]
    ) -> list[RuleChange]:
        key = (kind, sensor)
        d = self._debounce.get(key)
        if d is None:
            if not condition:
                return []
            d = self._debounce[key] = Debounce(self.settings.on_delay_s, self.settings.off_delay_s)
        changed = d.update(condition, t)
        if changed is None:
            return []
        return [
            RuleChange(
                kind, sensor, changed, t, text[0] % text[1:] if changed else f"{kind} cleared"
            )
        ]


def _correlations(vals: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pearson correlations of columns over rows where both are finite (0 where undefined)."""
    n = vals.shape[1]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            ok = np.isfinite(vals[:, i]) & np.isfinite(vals[:, j])
            a, b = vals[ok, i], vals[ok, j]
            if len(a) > 2 and a.std() > 0 and b.std() > 0:
                out[i, j] = out[j, i] = float(np.corrcoef(a, b)[0, 1])
    return out


def _fmt(limit: float | None, missing: str) -> str:
    return missing if limit is None else f"{limit:.6g}"


def limits_from(
    items: Iterable[tuple[str, float | None, float | None]],
) -> dict[str, tuple[float | None, float | None]]:
    """A limits map from (sensor, min, max) triples, dropping sensors without any limit."""
    return {name: (lo, hi) for name, lo, hi in items if lo is not None or hi is not None}
