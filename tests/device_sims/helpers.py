"""Plain factories for device_sims tests: one asset's series, with or without faults."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_sims.engine import Simulation, make_asset
from device_sims.environment import Ambient, SiteClimate
from device_sims.faults import FaultSpec
from device_sims.timefmt import NS_PER_S, parse_rfc3339_ns

START_NS = parse_rfc3339_ns("2026-11-23T00:00:00Z")  # a Monday
HOUR_NS = 3600 * NS_PER_S


@dataclass
class Series:
    """Readings of one asset as arrays (NaN where a sensor was missing)."""

    t_h: np.ndarray  # hours since START_NS
    values: dict[str, np.ndarray]
    count: int

    def window(self, sensor: str, from_h: float, to_h: float) -> np.ndarray:
        """Values of a sensor between two hour marks."""
        mask = (self.t_h >= from_h) & (self.t_h < to_h)
        return self.values[sensor][mask]

    def mean(self, sensor: str, from_h: float, to_h: float) -> float:
        """Mean of a sensor between two hour marks (ignoring gaps)."""
        return float(np.nanmean(self.window(sensor, from_h, to_h)))


def simulate(
    machine_type: str,
    hours: float,
    faults: list[dict[str, object]] | None = None,
    *,
    seed: int = 7,
    interval_s: int = 60,
    climate: SiteClimate | None = None,
) -> Series:
    """Simulate one asset; faults are FaultSpec fields with onset/end/ramp given in hours."""
    asset = make_asset(
        name="unit-1",
        site="site-t",
        machine_type=machine_type,
        seed=seed,
        start_ns=START_NS,
        interval_ns=interval_s * NS_PER_S,
        ambient=Ambient(climate or SiteClimate(indoor=True), seed),
    )
    sim = Simulation([asset], START_NS)
    for raw in faults or []:
        spec = dict(raw)
        onset = START_NS + int(float(spec.pop("onset_h", 0.0)) * HOUR_NS)  # type: ignore[arg-type]
        end_h = spec.pop("end_h", None)
        end = None if end_h is None else START_NS + int(float(end_h) * HOUR_NS)  # type: ignore[arg-type]
        ramp_s = float(spec.pop("ramp_h", 0.0)) * 3600.0  # type: ignore[arg-type]
        sim.add_fault(FaultSpec(asset="unit-1", onset_ns=onset, end_ns=end, ramp_s=ramp_s, **spec))  # type: ignore[arg-type]
    names = [s.name for s in asset.machine.SENSORS]
    times: list[float] = []
    columns: dict[str, list[float]] = {n: [] for n in names}
    for sample in sim.run_until(START_NS + int(hours * HOUR_NS)):
        times.append((sample.time_ns - START_NS) / HOUR_NS)
        for n in names:
            columns[n].append(sample.sensors.get(n, np.nan))
    return Series(np.array(times), {n: np.array(v) for n, v in columns.items()}, len(times))
