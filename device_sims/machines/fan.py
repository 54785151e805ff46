"""Belt-driven centrifugal fan and its induction motor on a variable-speed drive.

Fan laws: airflow ∝ fan speed, shaft power ∝ speed³. The belt creeps about 1.5 % when
healthy; a slipping belt loses far more, and the loss fluctuates as grip comes and goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec, motor_current


class Fan(Machine):
    """Electric motor driving a fan through a belt: motor and fan speeds, airflow, current."""

    TYPE = "fan"
    DESCRIPTION = "electric motor driving a centrifugal fan through a belt (fan laws)"
    SENSORS = (
        SensorSpec("motor_speed", "rpm", 0, 2.0, 0.0, 3600.0),
        SensorSpec("fan_speed", "rpm", 0, 2.0, 0.0, 3600.0),
        SensorSpec("airflow", "m3/h", 0, 20.0, 0.0, 100000.0, rel_noise=0.01),
        SensorSpec("motor_current", "A", 2, 0.06, 0.0, 200.0),
        SensorSpec("voltage", "V", 1, 0.6, 0.0, 500.0),
        SensorSpec("vibration_rms", "mm/s", 2, 0.02, 0.0, 50.0, rel_noise=0.05),
        SensorSpec("bearing_temp", "°C", 1, 0.15, -40.0, 150.0),
        SensorSpec("winding_temp", "°C", 1, 0.2, -40.0, 180.0),
    )
    FAULTS = frozenset({"bearing_wear", "imbalance", "misalignment", "overheating", "belt_slip"})
    DEFAULT_SENSOR = "bearing_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "rated_kw": 15.0,
        "rated_rpm": 1470.0,  # motor speed at 50 Hz, full load
        "ratio": 0.65,  # fan pulley / motor pulley speed ratio
        "rated_airflow": 30000.0,  # m3/h at full fan speed
        "min_speed": 0.5,
        "vibration_base": 1.8,
    }
    DEFAULT_DUTY = DutyProfile(schedule="continuous", base_load=0.65, daily_amp=0.2)

    def setup(self) -> None:
        """Rated current and thermal state."""
        self.rated_current = motor_current(self.p["rated_kw"] / 0.92, 400.0)
        self.bearing_temp = 0.0
        self.winding_temp = 0.0

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Speeds, airflow, electrical and thermal state at t_s."""
        p, noise = self.p, self.noise
        speed, load = self.op.update(t_s, dt_s)
        command = speed * (p["min_speed"] + (1.0 - p["min_speed"]) * min(load, 1.0))
        motor_rpm = command * p["rated_rpm"] * (1.0 - 0.01 * command)
        slip_fault = faults.get("belt_slip", 0.0)
        creep = 0.015 + slip_fault * (0.1 + 0.12 * noise.uniform())
        fan_rpm = motor_rpm * p["ratio"] * (1.0 - creep)
        nf = fan_rpm / (p["rated_rpm"] * p["ratio"])
        shaft_kw = 0.85 * p["rated_kw"] * nf**3
        # Power lost in a slipping belt heats the belt, it is not drawn from the supply twice.
        shaft_kw *= 1.0 + 0.5 * slip_fault * (1.0 - nf)
        volts = self.voltage(t_s)
        current = 0.0
        if speed > 0.02:
            current = motor_current(shaft_kw / 0.92, volts) + 0.3 * self.rated_current * command
        amb = self.ambient.at(t_s)
        heat = 1.0 + 1.8 * faults.get("overheating", 0.0)
        winding_target = amb + (5.0 * command + 60.0 * (current / self.rated_current) ** 2) * heat
        self.winding_temp = self.lag(self.winding_temp, winding_target, dt_s, 900.0)
        self.bearing_temp = self.lag(
            self.bearing_temp, self.bearing_target(amb, command, load, faults), dt_s, 1800.0
        )
        vib = self.vibration(p["vibration_base"], nf, load, faults)
        if slip_fault and speed > 0.02:
            vib += 1.2 * slip_fault * abs(noise.normal())  # belt flap
        self.mark_warm()
        return {
            "motor_speed": motor_rpm,
            "fan_speed": fan_rpm,
            "airflow": p["rated_airflow"] * nf,
            "motor_current": current,
            "voltage": volts,
            "vibration_rms": vib,
            "bearing_temp": self.bearing_temp,
            "winding_temp": self.winding_temp,
        }
