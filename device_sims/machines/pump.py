"""Centrifugal pump on a variable-speed drive, working against a system curve.

Operating point: the pump curve H = H0·n² − a·Q² (affinity laws) meets the system curve
H = Hs + Ks·Q²; the drive speed n follows demand. Power follows from ρ·g·Q·H and a best-
efficiency-point-shaped efficiency, current from power and supply voltage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec, motor_current

BAR_PER_M = 0.0981  # metres of water column to bar


class Pump(Machine):
    """Centrifugal pump with VFD, flow meter, suction/discharge pressure and motor sensors."""

    TYPE = "pump"
    DESCRIPTION = "centrifugal pump on a VFD (affinity laws, pump and system curves)"
    SENSORS = (
        SensorSpec("flow", "m3/h", 1, 0.4, 0.0, 400.0, rel_noise=0.005),
        SensorSpec("suction_pressure", "bar", 3, 0.004, -1.0, 10.0),
        SensorSpec("discharge_pressure", "bar", 3, 0.01, -1.0, 25.0),
        SensorSpec("speed_rpm", "rpm", 0, 2.0, 0.0, 3600.0),
        SensorSpec("motor_current", "A", 2, 0.08, 0.0, 200.0),
        SensorSpec("voltage", "V", 1, 0.6, 0.0, 500.0),
        SensorSpec("vibration_rms", "mm/s", 2, 0.02, 0.0, 50.0, rel_noise=0.05),
        SensorSpec("bearing_temp", "°C", 1, 0.15, -40.0, 150.0),
        SensorSpec("motor_temp", "°C", 1, 0.2, -40.0, 180.0),
    )
    FAULTS = frozenset(
        {
            "bearing_wear",
            "imbalance",
            "misalignment",
            "cavitation",
            "overheating",
            "leak",
            "clogged_filter",
        }
    )
    DEFAULT_SENSOR = "bearing_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "rated_flow": 120.0,  # m3/h at the best efficiency point
        "rated_head": 40.0,  # m at rated flow and full speed
        "rated_rpm": 2950.0,
        "suction_head": 1.2,  # bar at the suction flange with no flow (tank level)
        "min_speed": 0.55,  # VFD minimum speed fraction
        "vibration_base": 1.4,  # mm/s at full speed, healthy
    }
    DEFAULT_DUTY = DutyProfile(schedule="continuous", base_load=0.7, daily_amp=0.15)

    def setup(self) -> None:
        """Rated power and current from the rated duty point."""
        p = self.p
        q_r, h_r = p["rated_flow"], p["rated_head"]
        rated_shaft_kw = 9.81 * q_r / 3600.0 * h_r / 0.8
        self.rated_kw = rated_shaft_kw / 0.93
        self.rated_current = motor_current(self.rated_kw, 400.0) * 1.2
        self.bearing_temp = 0.0
        self.motor_temp = 0.0

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Operating point, power, vibration and temperatures at t_s."""
        p, noise = self.p, self.noise
        speed, load = self.op.update(t_s, dt_s)
        n = speed * (p["min_speed"] + (1.0 - p["min_speed"]) * min(load, 1.0))
        q_r, h_r = p["rated_flow"], p["rated_head"]
        leak = faults.get("leak", 0.0)
        clog = faults.get("clogged_filter", 0.0)
        cav = faults.get("cavitation", 0.0)
        shutoff_head = 1.25 * h_r * n * n
        if cav:
            # Vapour bubbles break the head down, unevenly from second to second.
            shutoff_head *= 1.0 - 0.3 * cav * (0.5 + noise.uniform())
        a = 0.25 * h_r / q_r**2
        static_head = 0.25 * h_r
        # A leak opens a parallel path (lower resistance); a clogged strainer adds resistance.
        k_sys = 0.75 * h_r / q_r**2 * (1.0 - 0.5 * leak) * (1.0 + 2.5 * clog)
        if shutoff_head > static_head:
            flow = math.sqrt((shutoff_head - static_head) / (a + k_sys))
            head = static_head + k_sys * flow * flow
        else:
            flow, head = 0.0, shutoff_head  # against the closed check valve
        x = flow / q_r
        suction = p["suction_head"] - 0.15 * x * x - 1.6 * clog * x * x
        suction -= cav * (0.25 + 0.2 * noise.uniform())
        discharge = suction + head * BAR_PER_M
        bep = flow / (q_r * max(n, 0.05))
        efficiency = max(0.25, 0.8 * (1.0 - 0.8 * (bep - 1.0) ** 2)) * (1.0 - 0.15 * cav)
        shaft_kw = 9.81 * flow / 3600.0 * head / efficiency if speed > 0.02 else 0.0
        shaft_kw += (
            self.rated_kw
            * speed
            * (0.02 * faults.get("bearing_wear", 0.0) + 0.03 * faults.get("misalignment", 0.0))
        )
        volts = self.voltage(t_s)
        current = 0.0
        if speed > 0.02:
            current = motor_current(shaft_kw / 0.93, volts) + 0.15 * self.rated_current * n
        amb = self.ambient.at(t_s)
        heat = 1.0 + 1.5 * faults.get("overheating", 0.0)
        motor_target = amb + (8.0 * speed + 45.0 * (current / self.rated_current) ** 2) * heat
        self.motor_temp = self.lag(self.motor_temp, motor_target, dt_s, 1200.0)
        self.bearing_temp = self.lag(
            self.bearing_temp, self.bearing_target(amb, n, load, faults), dt_s, 1800.0
        )
        vib = self.vibration(p["vibration_base"], n, load, faults)
        if cav:
            vib += 3.0 * cav * (0.3 + abs(noise.normal())) * n
        self.mark_warm()
        return {
            "flow": flow,
            "suction_pressure": suction,
            "discharge_pressure": discharge if speed > 0.02 else p["suction_head"],
            "speed_rpm": n * p["rated_rpm"],
            "motor_current": current,
            "voltage": volts,
            "vibration_rms": vib,
            "bearing_temp": self.bearing_temp,
            "motor_temp": self.motor_temp,
        }
