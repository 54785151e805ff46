"""HVAC air handling unit: supply fan on a VFD holding duct static pressure, filter, cooling coil.

The fan speed controller holds the duct static pressure at its set point, so a clogging filter
or a duct leak first shows as more fan speed and current, and only once the fan is at full
speed as lost airflow. The cooling valve holds the supply air temperature; an economiser uses
cold outdoor air instead when it can. Runs in office hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec, motor_current


class AirHandler(Machine):
    """Air handler: temperatures, fan, airflow, filter and duct pressures, cooling valve."""

    TYPE = "ahu"
    DESCRIPTION = "HVAC air handling unit: VFD supply fan, filter, cooling coil, economiser"
    SENSORS = (
        SensorSpec("supply_air_temp", "°C", 1, 0.1, -40.0, 80.0),
        SensorSpec("return_air_temp", "°C", 1, 0.1, -40.0, 80.0),
        SensorSpec("outside_air_temp", "°C", 1, 0.1, -40.0, 60.0),
        SensorSpec("fan_speed", "rpm", 0, 2.0, 0.0, 3000.0),
        SensorSpec("vfd_speed", "%", 1, 0.0, 0.0, 100.0),
        SensorSpec("fan_current", "A", 2, 0.05, 0.0, 100.0),
        SensorSpec("airflow", "m3/h", 0, 30.0, 0.0, 60000.0, rel_noise=0.01),
        SensorSpec("filter_dp", "Pa", 0, 2.0, 0.0, 1000.0),
        SensorSpec("static_pressure", "Pa", 0, 3.0, 0.0, 1000.0),
        SensorSpec("cooling_valve", "%", 1, 0.0, 0.0, 100.0),
        SensorSpec("vibration_rms", "mm/s", 2, 0.02, 0.0, 50.0, rel_noise=0.05),
    )
    FAULTS = frozenset(
        {"bearing_wear", "imbalance", "overheating", "leak", "clogged_filter", "belt_slip"}
    )
    DEFAULT_SENSOR = "supply_air_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "rated_airflow": 20000.0,  # m3/h at full fan speed against the design system
        "rated_kw": 11.0,
        "fan_rpm": 1800.0,  # fan speed at 100 % drive with a healthy belt
        "static_setpoint": 250.0,  # Pa
        "supply_setpoint": 13.0,  # °C
        "cooling_capacity": 12.0,  # K of air cooling at full valve
        "vibration_base": 1.2,
    }
    DEFAULT_DUTY = DutyProfile(
        schedule="office_hours", base_load=0.6, daily_amp=0.2, stops_per_week=0.1, ramp_s=60.0
    )

    def setup(self) -> None:
        """Duct model (fan pressure and resistances at design flow) and thermal state."""
        p = self.p
        q = p["rated_airflow"]
        # At full speed and design flow: fan gives 600 Pa, split over filter, coil and duct.
        self.k_duct = p["static_setpoint"] / (0.8 * q) ** 2
        self.k_filter = 100.0 / q**2
        self.k_coil = 150.0 / q**2
        self.fan_p0 = 800.0
        self.fan_b = 200.0 / q**2
        self.rated_current = motor_current(p["rated_kw"] / 0.9, 400.0)
        self.return_temp = 0.0

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Airflow, pressures, temperatures and fan state at t_s."""
        p, noise = self.p, self.noise
        speed, load = self.op.update(t_s, dt_s)
        outside = self.ambient.outdoor_c(t_s)
        slip = 0.015 + faults.get("belt_slip", 0.0) * (0.12 + 0.1 * noise.uniform())
        k_filter = self.k_filter * (1.0 + 10.0 * faults.get("clogged_filter", 0.0))
        # VAV boxes open with load; a duct leak lowers the resistance the fan sees.
        k_duct = self.k_duct / (0.4 + 0.6 * min(load, 1.0)) ** 2
        k_duct *= 1.0 - 0.45 * faults.get("leak", 0.0)
        k_total = k_duct + k_filter + self.k_coil
        command = 0.0
        airflow = 0.0
        if speed > 0.02:
            # Flow that holds the static set point, and the fan speed (after belt slip) it needs.
            airflow = math.sqrt(p["static_setpoint"] / k_duct)
            nf = math.sqrt((k_total + self.fan_b) * airflow**2 / self.fan_p0)
            command = nf / (1.0 - slip)
            if command > 1.0:  # the drive is at full speed: the set point is lost
                command = 1.0
                nf = 1.0 - slip
                airflow = nf * math.sqrt(self.fan_p0 / (k_total + self.fan_b))
            command *= speed
            airflow *= speed
        nf = command * (1.0 - slip)
        static = k_duct * airflow**2
        fan_kw = 0.8 * p["rated_kw"] * nf**3 * (1.0 + 0.4 * faults.get("belt_slip", 0.0))
        volts = self.voltage(t_s)
        current = (
            motor_current(fan_kw / 0.9, volts) + 0.25 * self.rated_current * command
            if speed > 0.02
            else 0.0
        )
        # Cooling: mixed air (30 % outdoor) cooled to set point, economiser when it is cold out.
        room = 21.5 + 2.0 * load * speed
        mixed = 0.3 * outside + 0.7 * self.return_temp if self._warm else room
        capacity = p["cooling_capacity"] * (1.0 - 0.9 * faults.get("overheating", 0.0))
        need = max(0.0, mixed - p["supply_setpoint"])
        valve = 0.0
        if speed < 0.02:
            supply = room
        elif outside <= p["supply_setpoint"]:
            supply = p["supply_setpoint"]  # economiser mixes outdoor air down to set point
        else:
            if outside < self.return_temp:
                need = outside - p["supply_setpoint"]  # economiser: all outdoor air
                mixed = outside
            valve = min(1.0, need / max(capacity, 0.1))
            supply = mixed - min(need, capacity)
        building = self.ambient.at(t_s)
        return_target = (
            room + 0.6 * max(0.0, supply - p["supply_setpoint"])
            if speed > 0.02
            else (building + 0.3 * (outside - building))
        )
        self.return_temp = self.lag(self.return_temp, return_target, dt_s, 1800.0)
        vib = self.vibration(p["vibration_base"], nf, load, faults)
        self.mark_warm()
        return {
            "supply_air_temp": supply,
            "return_air_temp": self.return_temp,
            "outside_air_temp": outside,
            "fan_speed": nf * p["fan_rpm"],
            "vfd_speed": 100.0 * command,
            "fan_current": current,
            "airflow": airflow,
            "filter_dp": k_filter * airflow**2,
            "static_pressure": static,
            "cooling_valve": 100.0 * valve,
            "vibration_rms": vib,
        }
