"""Isolated outliers (single-sample spikes) on one sensor: held for the model, counted per sensor.

A value is an outlier *candidate* when it jumps more than ``jump_z`` robust sd of the sensor's
own sample-to-sample change (learned from the baseline) away from its last good value, while
no correlated neighbour jumps with it (a stop or a set-point step moves them together). The
candidate is not given to the model (the caller holds the last good value). The next sample
decides: back near the last good value, it was a spike and is counted; still far away, the
level really moved and is accepted from then on. So only outliers are delayed, by one sample.

Spikes are counted per sensor over ``window_s``; ``count`` of them make the sensor's condition
true (the caller debounces it into an ``instrument_spikes`` alert).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt


class SpikeFilter:
    """Per-sensor isolated-outlier detector of one asset; ``learn`` baseline rows first."""

    def __init__(self, *, jump_z: float = 8.0, window_s: float = 3600.0, count: int = 3) -> None:
        self.jump_z = jump_z
        self.window_s = window_s
        self.count = count
        self._scale: dict[str, float] = {}
        self._neighbours: dict[str, tuple[str, ...]] = {}
        self._good: dict[str, float] = {}
        self._prev: dict[str, float] = {}
        self._pending: set[str] = set()
        self._spikes: dict[str, deque[float]] = {}

    def learn(
        self,
        sensors: Sequence[str],
        values: npt.ArrayLike,
        neighbours: Mapping[str, tuple[str, ...]],
    ) -> None:
        """Robust scale of each sensor's sample-to-sample change in the baseline rows."""
        vals = np.asarray(values, dtype=np.float64)
        self._scale = {}
        for j, name in enumerate(sensors):
            col = vals[np.isfinite(vals[:, j]), j]
            if len(col) < 10:
                continue
            diff = np.diff(col)
            mad = float(np.median(np.abs(diff - np.median(diff)))) * 1.4826
            # Quantised or nearly flat sensors: never below a thousandth of the level, nor
            # below the mean absolute change (a mostly-flat series has a MAD of 0).
            floor = max(float(np.mean(np.abs(diff))), 1e-3 * abs(float(np.median(col))), 1e-9)
            self._scale[name] = max(mad, floor)
            self._good[name] = float(col[-1])
            self._prev[name] = float(col[-1])
        self._neighbours = {
            k: tuple(n for n in v if n in self._scale) for k, v in neighbours.items()
        }

    def observe(self, t: float, row: Mapping[str, float]) -> set[str]:
        """Feed one row: the sensors whose value is a held outlier candidate now."""
        jumps = {
            name: abs(v - self._prev[name]) / self._scale[name]
            for name, v in row.items()
            if name in self._scale
        }
        held: set[str] = set()
        for name, z in jumps.items():
            value, good = row[name], self._good[name]
            far = abs(value - good) / self._scale[name] > self.jump_z
            if name in self._pending:
                self._pending.discard(name)
                if not far:  # back where it was: the previous sample was a spike
                    self._spikes.setdefault(name, deque()).append(t)
            elif far and z > self.jump_z and not self._shared(name, jumps):
                self._pending.add(name)
                held.add(name)
            if name not in held:
                self._good[name] = value
            self._prev[name] = value
        for times in self._spikes.values():
            while times and times[0] <= t - self.window_s:
                times.popleft()
        return held

    def counted(self) -> list[str]:
        """Sensors that have spiked since the filter started (their counts may be 0 now)."""
        return list(self._spikes)

    def spiking(self, name: str) -> bool:
        """Whether the sensor spiked ``count`` times within the window."""
        return len(self._spikes.get(name, ())) >= self.count

    def recent(self, name: str) -> int:
        """Spikes of the sensor within the window."""
        return len(self._spikes.get(name, ()))

    def _shared(self, name: str, jumps: Mapping[str, float]) -> bool:
        # A correlated neighbour jumping at the same sample means the process moved.
        half = self.jump_z / 2
        return any(jumps.get(other, 0.0) > half for other in self._neighbours.get(name, ()))
