"""Sensor faults: the machine is fine, the measurement is not."""

from __future__ import annotations

from device_sims.faults.spec import FaultSpec
from device_sims.seeding import Noise
from device_sims.timefmt import NS_PER_S

DAY_NS = 86400 * NS_PER_S


class SensorFaults:
    """Applies an asset's sensor faults to its readings; remembers stuck values and baselines."""

    def __init__(self, noise: Noise) -> None:
        self._noise = noise
        self._memory: dict[str, float] = {}

    def distort(self, faults: list[FaultSpec], t_ns: int, values: dict[str, float]) -> None:
        """Drift and spikes: applied before quantisation, like a real ADC chain."""
        for fault in faults:
            name = fault.sensor
            if name is None or name not in values or not fault.active(t_ns):
                continue
            value = values[name]
            if fault.kind == "drift":
                base = self._memory.setdefault(fault.fault_id, value)
                days = (t_ns - fault.onset_ns) / DAY_NS
                rate = fault.params.get("rate_per_day", 0.1 * fault.severity * max(abs(base), 1.0))
                values[name] = value + rate * days
            elif fault.kind == "spikes":
                probability = fault.params.get("probability", 0.03 * max(fault.severity, 0.1))
                if self._noise.chance(probability):
                    magnitude = fault.params.get("magnitude", 4.0)
                    bump = magnitude * (abs(value) + 1.0) * (0.5 + self._noise.uniform())
                    values[name] = value + bump

    def finish(self, faults: list[FaultSpec], t_ns: int, values: dict[str, float]) -> bool:
        """Stuck, dropout and scaling, after quantisation; False: the asset sends nothing now."""
        for fault in faults:
            if not fault.active(t_ns):
                continue
            if fault.kind == "dropout":
                if fault.sensor is None:
                    probability = fault.params.get("probability", 1.0)
                    if probability >= 1.0 or self._noise.chance(probability):
                        return False
                else:
                    values.pop(fault.sensor, None)
            elif fault.kind == "wrong_scaling" and fault.sensor in values:
                # A wrong scale in the device's configuration: applied after the transmitter's
                # range clamp, so the lie is not clipped to plausible values.
                scaled = values[fault.sensor] * fault.params.get("factor", 10.0)
                values[fault.sensor] = round(scaled + fault.params.get("offset", 0.0), 6)
            elif fault.kind == "stuck" and fault.sensor in values:
                frozen = self._memory.setdefault(
                    fault.fault_id, fault.params.get("value", values[fault.sensor])
                )
                values[fault.sensor] = frozen
        return True
