"""Gateway batching: readings of several assets gathered into one message per site."""

from __future__ import annotations

from dataclasses import dataclass, field

from device_sims.engine import Sample
from device_sims.formats import json_batch, line_protocol_batch


@dataclass
class Batch:
    """A finished batch ready for the wire."""

    site: str
    payload: bytes
    count: int


@dataclass
class Batcher:
    """Collects readings per site; a batch closes at ``size`` readings or ``max_age_ns``."""

    fmt: str  # "json" or "lp"
    size: int
    max_age_ns: int
    precision: str = "ms"
    _open: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, sample: Sample) -> list[Batch]:
        """Add one reading; returns the batches this closed."""
        pending = self._open.setdefault(sample.site, [])
        pending.append(sample)
        closed = []
        if len(pending) >= self.size:
            closed.append(self._close(sample.site))
        return closed + self.due(sample.time_ns)

    def due(self, now_ns: int) -> list[Batch]:
        """Batches whose first reading is older than max_age_ns at now_ns."""
        return [
            self._close(site)
            for site, pending in list(self._open.items())
            if pending and now_ns - pending[0].time_ns >= self.max_age_ns
        ]

    def drain(self) -> list[Batch]:
        """Close every open batch (on flush and shutdown)."""
        return [self._close(site) for site, pending in list(self._open.items()) if pending]

    def _close(self, site: str) -> Batch:
        samples = self._open.pop(site)
        if self.fmt == "lp":
            payload = line_protocol_batch(samples)
        else:
            payload = json_batch(site, samples, self.precision)
        return Batch(site, payload, len(samples))
