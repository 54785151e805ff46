"""A conditioned zone (office, guest room, ward): its air temperature, one slow sensor.

In occupied hours (the duty schedule) the building's HVAC holds the set point as far as its
capacity allows; outside them it only guards a frost and an overheat limit, and the room floats
towards its balance temperature: indoors, pulled part of the way towards the weather outside,
plus what people and equipment give off. The room follows its target through its thermal mass
(a few hours). So the series has the daily and weekly cycles of occupancy, and a season, as the
ambient temperature of a real office has; a cooling failure makes the occupied hours warm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec


class Zone(Machine):
    """Room air temperature under the building's HVAC schedule."""

    TYPE = "zone"
    DESCRIPTION = (
        "conditioned room or office zone: air temperature held by the HVAC in occupied hours, "
        "floating with the weather outside them"
    )
    SENSORS = (SensorSpec("room_temp", "°C", 2, 0.08, -20.0, 60.0),)
    FAULTS = frozenset({"overheating"})
    DEFAULT_SENSOR = "room_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "setpoint": 22.0,  # °C held in occupied hours
        "coupling": 0.3,  # share of the outdoor departure from 21 °C that reaches inside
        "gains": 3.0,  # K that occupants and equipment add at full occupancy
        "capacity": 6.0,  # K the HVAC can pull the room away from its balance temperature
        "frost_limit": 15.0,  # °C kept outside occupied hours
        "overheat_limit": 29.0,
        "thermal_tau_s": 3 * 3600.0,
        "failure_heat": 4.0,  # K the room gains at full severity when cooling fails
    }
    DEFAULT_DUTY = DutyProfile(
        schedule="office_hours",
        base_load=0.75,
        daily_amp=0.15,
        weekend_factor=0.3,
        steps_per_day=0.5,
        stops_per_week=0.0,
        ramp_s=1800.0,
    )

    def setup(self) -> None:
        """Thermal state (set on the first step)."""
        self.room = 0.0

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Room temperature at t_s."""
        p = self.p
        hvac, occupancy = self.op.update(t_s, dt_s)
        outdoor = self.ambient.outdoor_c(t_s)
        balance = 21.0 + p["coupling"] * (outdoor - 21.0) + p["gains"] * occupancy * hvac
        # Cooling failure: the heat the HVAC removes stays in the room (its gains and the
        # equipment's), and the set point can no longer be held from above.
        failed = faults.get("overheating", 0.0)
        balance += p["failure_heat"] * failed
        cooling = p["capacity"] * (1.0 - failed)
        if hvac > 0.5:
            if balance > p["setpoint"]:
                target = max(p["setpoint"], balance - cooling)
            else:
                target = min(p["setpoint"], balance + p["capacity"])
        else:
            target = min(max(balance, p["frost_limit"]), p["overheat_limit"] + 4.0 * failed)
        self.room = self.lag(self.room, target, dt_s, p["thermal_tau_s"] * self.unit_spread)
        self.mark_warm()
        return {"room_temp": self.room}
