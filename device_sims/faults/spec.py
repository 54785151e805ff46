"""A scheduled or injected fault and its degradation curve."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from device_sims.timefmt import NS_PER_S, format_rfc3339_ns


@dataclass
class FaultSpec:
    """One fault on one asset.

    The level grows from 0 at ``onset`` to ``severity`` after ``ramp_s`` seconds along
    ``(exp(growth * x) - 1) / (exp(growth) - 1)`` with x the fraction of the ramp done, so
    ``growth = 0`` is linear and larger values degrade slowly at first and then faster (as
    bearings do). From ``end`` on (a repair) the level is 0 again.
    """

    asset: str
    kind: str
    onset_ns: int
    end_ns: int | None = None
    severity: float = 1.0
    ramp_s: float = 0.0
    growth: float = 0.0
    sensor: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    fault_id: str = ""
    source: str = "schedule"

    def active(self, t_ns: int) -> bool:
        """Whether the fault acts at t_ns (between onset and repair)."""
        return t_ns >= self.onset_ns and (self.end_ns is None or t_ns < self.end_ns)

    def level(self, t_ns: int) -> float:
        """Severity reached at t_ns: 0 before onset and after repair."""
        if not self.active(t_ns):
            return 0.0
        if self.ramp_s <= 0:
            return self.severity
        x = min(1.0, (t_ns - self.onset_ns) / (self.ramp_s * NS_PER_S))
        if abs(self.growth) < 1e-9:
            return self.severity * x
        return self.severity * math.expm1(self.growth * x) / math.expm1(self.growth)

    def truth_record(self, site: str) -> dict[str, Any]:
        """The ground-truth line for this fault."""
        return {
            "fault_id": self.fault_id,
            "site": site,
            "asset": self.asset,
            "kind": self.kind,
            "sensor": self.sensor,
            "onset": format_rfc3339_ns(self.onset_ns),
            "end": None if self.end_ns is None else format_rfc3339_ns(self.end_ns),
            "onset_ns": self.onset_ns,
            "end_ns": self.end_ns,
            "severity": self.severity,
            "ramp_s": self.ramp_s,
            "growth": self.growth,
            "params": dict(self.params),
            "source": self.source,
        }
