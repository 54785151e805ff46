"""Meters counted from telemetry: each asset's running hours and starts, and the meters of
``lifecycle.meter_rules`` (a sensor integrated over running time, or its rising crossings of a
threshold), restart-safe.

The asset's running state is judged as the scorer judges it (analytics.running: every running
indicator — speed, current, flow, vibration… — below a tenth of its running level means
stopped), with a ``RunningState`` of the counter's own, fitted on the same baseline, so it
counts while the model is learning, refitting or on the seasonal path alike. An interval
between two readings counts as running time when the asset ran at both ends (so a meter is
off by less than one sampling interval per start or stop); a gap longer than ``max_gap_s``
(the asset was silent) counts nothing. A start is a reading that runs after one that did not.

Restart-safe: each asset's count (``MeterState``: totals and the time of the last reading
counted) is kept in ``data_dir/meters.json``, written atomically after every tick, and a
reading at or before that time is never counted again. An asset is first counted once its
model is fitted on a day or more (``lifecycle.meter_min_baseline_s``: a short first baseline,
an hour at night, may show the machine stopped throughout, so its running level is unknown),
and that first count starts from the baseline's rows (backfill). The
values go to the API as lifetime totals (analytics.meter_sync).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy.typing as npt

from analytics.files import atomic_write
from analytics.running import RunningState
from analytics.settings import MeterRule
from analytics.source import AssetKey

logger = logging.getLogger(__name__)

RUNNING_HOURS, STARTS = "running_hours", "starts"


@dataclass
class MeterState:
    """One asset's count so far; ``through_ns`` is the last reading counted (0 = none)."""

    through_ns: int = 0
    running: bool = False
    running_s: float = 0.0
    starts: int = 0
    # Rule meters (lifecycle.meter_rules) by name, and the last value each rule saw.
    counted: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)


class MeterCounter:
    """Counts one asset's rows (in time order) into its ``MeterState``."""

    def __init__(
        self,
        sensors: Sequence[str],
        baseline: npt.ArrayLike,
        state: MeterState,
        *,
        max_gap_s: float,
        rules: Sequence[MeterRule] = (),
    ) -> None:
        self.sensors = tuple(sensors)
        self.running_state = RunningState().fit(baseline, self.sensors)
        self.state = state
        self.max_gap_s = max_gap_s
        # The rules whose sensor this asset has, with its column.
        self.rules = [(r, self.sensors.index(r.sensor)) for r in rules if r.sensor in self.sensors]

    @property
    def has_indicators(self) -> bool:
        """Whether the asset has sensors that show it running (else it has no meters)."""
        return len(self.running_state.indicators_) > 0

    def count(self, t_ns: int, row: Sequence[float]) -> bool:
        """Count one reading (values in ``sensors`` order, NaN = missing); whether it counted."""
        s = self.state
        if t_ns <= s.through_ns:
            return False  # counted before a restart, or a repeat
        running = not self.running_state.update(row, t_ns / 1e9)
        both_running = False
        if s.through_ns:
            gap_s = (t_ns - s.through_ns) / 1e9
            both_running = s.running and running and gap_s <= self.max_gap_s
            if both_running:
                s.running_s += gap_s
            if running and not s.running:
                s.starts += 1
            self._apply_rules(row, gap_s if both_running else None)
        else:
            self._apply_rules(row, None)
        s.through_ns, s.running = t_ns, running
        return True

    def _apply_rules(self, row: Sequence[float], running_gap_s: float | None) -> None:
        """Rule meters: integrals over running intervals (trapezoid), rising crossings."""
        s = self.state
        for rule, column in self.rules:
            value = float(row[column])
            if not math.isfinite(value):
                continue
            before = s.last.get(rule.name)
            total = s.counted.get(rule.name, 0.0)
            if before is not None:
                if rule.kind == "integral" and running_gap_s is not None:
                    total += rule.scale * (before + value) / 2.0 * running_gap_s
                elif rule.kind == "rising" and before < rule.threshold <= value:
                    total += 1.0
            s.counted[rule.name] = total
            s.last[rule.name] = value


class MeterBook:
    """Every asset's meter state, persisted as JSON; which changed since the last post."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.states: dict[AssetKey, MeterState] = {}
        self.changed: set[AssetKey] = set()
        self._dirty = False
        self._lock = threading.Lock()
        self._load()

    def known(self, key: AssetKey) -> bool:
        """Whether the asset has been counted before (a state exists)."""
        with self._lock:
            return key in self.states

    def state(self, key: AssetKey) -> tuple[MeterState, bool]:
        """The asset's state and whether it is new (never counted: backfill it)."""
        with self._lock:
            found = self.states.get(key)
            if found is not None:
                return found, False
            state = self.states[key] = MeterState()
            return state, True

    def touch(self, key: AssetKey) -> None:
        """The asset's count moved: post it."""
        with self._lock:
            self.changed.add(key)
            self._dirty = True

    def take_changed(self) -> list[tuple[AssetKey, MeterState]]:
        """The states changed since the last call (copies), to post."""
        with self._lock:
            keys, self.changed = self.changed, set()
            return [(k, _copy(self.states[k])) for k in sorted(keys)]

    def give_back(self, keys: Sequence[AssetKey]) -> None:
        """A post failed: post these again next time."""
        with self._lock:
            self.changed.update(keys)

    def save_if_dirty(self) -> None:
        """Write every state atomically, if any moved since the last write."""
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            doc = {
                "format_version": 1,
                "assets": [[k[0], k[1], asdict(s)] for k, s in sorted(self.states.items())],
            }
        try:
            atomic_write(self.path, json.dumps(doc).encode())
        except OSError:
            with self._lock:
                self._dirty = True  # try again after the next tick
            raise

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("format_version") != 1:
                raise ValueError(f"format version {doc.get('format_version')!r}")
            self.states = {(str(a), str(b)): MeterState(**s) for a, b, s in doc["assets"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Starting afresh would count the baseline again on top of what the API holds,
            # and the API refuses a total lower than its last: keep the file for a person.
            logger.error("meters file %s unusable (%s); kept as .bad", self.path, exc)
            os.replace(self.path, self.path.with_suffix(".bad"))


def _copy(state: MeterState) -> MeterState:
    return MeterState(**asdict(state))
