"""Belt conveyor: motor, gearbox and drive pulley moving a varying material load.

Current splits into a no-load part (belt and idler friction) and a part proportional to
the material on the belt. A slipping drive pulley lets the belt lag the pulley surface
speed, most under heavy load, and less torque (so less current) reaches the belt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec, motor_current


class Conveyor(Machine):
    """Conveyor: motor speed, belt speed, throughput, current, motor and gearbox temperatures."""

    TYPE = "conveyor"
    DESCRIPTION = "belt conveyor with motor, gearbox and drive pulley, two-shift operation"
    SENSORS = (
        SensorSpec("motor_speed", "rpm", 0, 2.0, 0.0, 3600.0),
        SensorSpec("belt_speed", "m/s", 3, 0.004, 0.0, 10.0),
        SensorSpec("throughput", "t/h", 1, 1.0, 0.0, 2000.0, rel_noise=0.01),
        SensorSpec("motor_current", "A", 2, 0.1, 0.0, 300.0),
        SensorSpec("motor_temp", "°C", 1, 0.2, -40.0, 180.0),
        SensorSpec("gearbox_temp", "°C", 1, 0.15, -40.0, 150.0),
        SensorSpec("vibration_rms", "mm/s", 2, 0.02, 0.0, 50.0, rel_noise=0.05),
    )
    FAULTS = frozenset({"bearing_wear", "imbalance", "misalignment", "overheating", "belt_slip"})
    DEFAULT_SENSOR = "gearbox_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "rated_kw": 22.0,
        "rated_rpm": 1480.0,
        "belt_speed": 2.5,  # m/s at rated motor speed without slip
        "capacity": 600.0,  # t/h at full load and speed
        "vibration_base": 2.0,
    }
    DEFAULT_DUTY = DutyProfile(
        schedule="two_shift",
        base_load=0.6,
        daily_amp=0.1,
        wander=0.12,
        steps_per_day=8.0,
        stops_per_week=2.0,
        ramp_s=8.0,
    )

    def setup(self) -> None:
        """Rated current and thermal state."""
        self.rated_current = motor_current(self.p["rated_kw"] / 0.93, 400.0)
        self.motor_temp = 0.0
        self.gearbox_temp = 0.0

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Speeds, throughput, current and temperatures at t_s."""
        p, noise = self.p, self.noise
        speed, load = self.op.update(t_s, dt_s)
        material = min(load, 1.1) if speed > 0.5 else 0.0
        slip_fault = faults.get("belt_slip", 0.0)
        slip = 0.005 + slip_fault * (0.04 + 0.16 * material) * (0.6 + 0.8 * noise.uniform())
        motor_rpm = speed * p["rated_rpm"] * (1.0 - 0.012 * material)
        belt = motor_rpm / p["rated_rpm"] * p["belt_speed"] * (1.0 - slip)
        torque = 0.35 + 0.65 * material  # fraction of rated: friction plus lifting the load
        torque *= 1.0 - 0.5 * slip_fault * material  # a slipping pulley passes less torque
        torque *= (
            1.0 + 0.03 * faults.get("misalignment", 0.0) + 0.03 * faults.get("bearing_wear", 0.0)
        )
        volts = self.voltage(t_s)
        current = 0.0
        if speed > 0.02:
            kw = p["rated_kw"] * torque * speed
            current = motor_current(kw / 0.93, volts) + 0.2 * self.rated_current * speed
        amb = self.ambient.at(t_s)
        heat = 1.0 + 1.6 * faults.get("overheating", 0.0)
        motor_target = amb + (6.0 * speed + 50.0 * (current / self.rated_current) ** 2) * heat
        self.motor_temp = self.lag(self.motor_temp, motor_target, dt_s, 1500.0)
        gear_rise = speed * (12.0 + 18.0 * material) + 14.0 * faults.get("misalignment", 0.0)
        gear_rise += 20.0 * faults.get("bearing_wear", 0.0) * speed
        self.gearbox_temp = self.lag(self.gearbox_temp, amb + gear_rise, dt_s, 2400.0)
        vib = self.vibration(p["vibration_base"], speed, material, faults)
        if slip_fault and speed > 0.5:
            vib += 1.5 * slip_fault * material * abs(noise.normal())  # stick-slip judder
        self.mark_warm()
        return {
            "motor_speed": motor_rpm,
            "belt_speed": belt,
            "throughput": p["capacity"] * material * belt / p["belt_speed"],
            "motor_current": current,
            "motor_temp": self.motor_temp,
            "gearbox_temp": self.gearbox_temp,
            "vibration_rms": vib,
        }
