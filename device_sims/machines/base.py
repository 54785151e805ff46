"""What every simulated machine shares: sensor specs, the step pipeline and physics helpers."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from device_sims.environment import Ambient, DutyProfile, Operation
from device_sims.seeding import Noise

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class SensorSpec:
    """One sensor: unit, display resolution (decimals), noise, and the range it can report."""

    name: str
    unit: str
    decimals: int
    noise: float  # absolute standard deviation of white measurement noise
    lo: float
    hi: float
    rel_noise: float = 0.0  # extra noise proportional to the value (vibration, flow meters)
    description: str = ""

    def quantise(self, value: float) -> float:
        """Clamp to the transmitter range and round to its resolution."""
        return round(min(self.hi, max(self.lo, value)), self.decimals)


class Machine(ABC):
    """A machine type. Subclasses implement ``physics`` (true, noise-free values)."""

    TYPE: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    SENSORS: ClassVar[tuple[SensorSpec, ...]]
    FAULTS: ClassVar[frozenset[str]]
    DEFAULT_SENSOR: ClassVar[str]
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]]
    DEFAULT_DUTY: ClassVar[DutyProfile]

    def __init__(
        self,
        params: Mapping[str, float],
        ambient: Ambient,
        duty: DutyProfile,
        noise: Noise,
    ) -> None:
        unknown = set(params) - set(self.DEFAULT_PARAMS)
        if unknown:
            raise ValueError(
                f"{self.TYPE}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.DEFAULT_PARAMS))}"
            )
        self.p = {**self.DEFAULT_PARAMS, **{k: float(v) for k, v in params.items()}}
        self.ambient = ambient
        self.noise = noise
        self.op = Operation(duty, ambient.climate.utc_offset_h, noise)
        # Two units of one model differ a little (tolerances, mounting, foundations).
        self.unit_spread = 1.0 + 0.04 * max(-2.5, min(2.5, noise.normal()))
        self._warm = False
        self.setup()

    def setup(self) -> None:  # noqa: B027 - an optional hook, not an abstract step
        """Derive ratings from parameters and initialise state (subclasses override)."""

    @abstractmethod
    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Advance the machine by dt_s and return the true value of every sensor."""

    def measure(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """True values plus measurement noise (not yet quantised)."""
        values = self.physics(t_s, dt_s, faults)
        normal = self.noise.normal
        for spec in self.SENSORS:
            value = values[spec.name]
            sd = spec.noise + spec.rel_noise * abs(value)
            if sd:
                values[spec.name] = value + sd * normal()
        return values

    def lag(self, current: float, target: float, dt_s: float, tau_s: float) -> float:
        """First-order lag (thermal mass): exact step of dT/dt = (target - T) / tau."""
        if not self._warm:
            return target
        return current + (target - current) * (1.0 - math.exp(-dt_s / tau_s))

    def mark_warm(self) -> None:
        """After the first step, temperatures evolve; before it they start at steady state."""
        self._warm = True

    def voltage(self, t_s: float, nominal: float = 400.0) -> float:
        """Supply voltage: sags a little in the working day when the plant is loaded."""
        hour = (t_s / 3600.0 + self.ambient.climate.utc_offset_h) % 24.0
        return nominal * (1.0 - 0.012 * math.cos(math.tau * (hour - 14.0) / 24.0))

    def vibration(
        self, base: float, speed: float, load: float, faults: Mapping[str, float]
    ) -> float:
        """Vibration RMS (mm/s) of a rotating machine and what faults add to it.

        Healthy: grows with speed squared (residual imbalance) and a little with load. Faults:
        bearing wear grows faster than linearly with its level and brings impacts; imbalance
        scales with speed squared; misalignment scales with transmitted torque (load).
        """
        if speed < 0.02:
            return 0.05  # floor vibration transmitted from neighbouring machines
        noise = self.noise
        v = base * self.unit_spread * (0.35 + 0.65 * speed * speed) + 0.3 * load * speed
        bearing = faults.get("bearing_wear", 0.0)
        if bearing:
            v += 7.0 * bearing**1.5 * speed
            if noise.chance(0.08 * bearing):
                v += 4.0 * bearing * noise.uniform()
        v += 6.0 * faults.get("imbalance", 0.0) * speed * speed
        v += 4.0 * faults.get("misalignment", 0.0) * (0.4 + load) * speed
        return v

    def bearing_target(
        self, ambient: float, speed: float, load: float, faults: Mapping[str, float]
    ) -> float:
        """Steady-state bearing temperature: friction heat over ambient, raised by faults."""
        rise = speed * (14.0 + 9.0 * load)
        rise += 30.0 * faults.get("bearing_wear", 0.0) * speed
        rise += 8.0 * faults.get("misalignment", 0.0) * speed
        return ambient + rise * (1.0 + 0.3 * faults.get("overheating", 0.0))


def motor_current(power_kw: float, voltage: float, power_factor: float = 0.85) -> float:
    """Line current (A) of a three-phase motor drawing power_kw electrical."""
    return power_kw * 1000.0 / (SQRT3 * voltage * power_factor)
