"""Rotary-screw air compressor with load/unload control feeding an air receiver.

The receiver pressure integrates delivery minus plant demand; the controller loads the
compressor at the cut-in pressure and unloads it at cut-out, so the pressure saws between
the two. Internally the model sub-steps at <= 2 s so the sawtooth does not depend on the
sample interval. An over-temperature trip stops it until the oil has cooled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from device_sims.environment import DutyProfile
from device_sims.machines.base import Machine, SensorSpec, motor_current

_SUBSTEP_S = 2.0


class Compressor(Machine):
    """Air compressor: receiver pressure, motor current, oil and discharge temperatures, duty."""

    TYPE = "compressor"
    DESCRIPTION = "rotary-screw air compressor, load/unload control, air receiver"
    SENSORS = (
        SensorSpec("discharge_pressure", "bar", 2, 0.01, 0.0, 16.0),
        SensorSpec("motor_current", "A", 1, 0.2, 0.0, 400.0),
        SensorSpec("oil_temp", "°C", 1, 0.15, -40.0, 150.0),
        SensorSpec("discharge_temp", "°C", 1, 0.2, -40.0, 150.0),
        SensorSpec("intake_temp", "°C", 1, 0.1, -40.0, 80.0),
        SensorSpec("vibration_rms", "mm/s", 2, 0.02, 0.0, 50.0, rel_noise=0.05),
        SensorSpec("loaded_duty", "%", 1, 0.0, 0.0, 100.0),
    )
    FAULTS = frozenset(
        {"bearing_wear", "imbalance", "misalignment", "overheating", "leak", "clogged_filter"}
    )
    DEFAULT_SENSOR = "oil_temp"
    DEFAULT_PARAMS: ClassVar[Mapping[str, float]] = {
        "rated_kw": 37.0,
        "fad": 6.0,  # free air delivery, m3/min
        "receiver_m3": 10.0,
        "cut_in": 6.5,  # bar(g)
        "cut_out": 7.5,
        "trip_temp": 110.0,  # discharge temperature trip, °C
        "vibration_base": 2.2,
    }
    DEFAULT_DUTY = DutyProfile(
        schedule="continuous", base_load=0.55, daily_amp=0.25, weekend_factor=0.5, ramp_s=3.0
    )

    def setup(self) -> None:
        """Receiver and thermal state."""
        self.rated_current = motor_current(self.p["rated_kw"] / 0.94, 400.0)
        self.pressure = self.p["cut_out"]
        self.loaded = False
        self.duty = 0.5
        self.oil_temp = 0.0
        self.tripped = False

    def physics(self, t_s: float, dt_s: float, faults: Mapping[str, float]) -> dict[str, float]:
        """Receiver pressure, load state and temperatures after dt_s."""
        p = self.p
        speed, load = self.op.update(t_s, dt_s)
        clog = faults.get("clogged_filter", 0.0)
        # Plant demand follows production; a leak bleeds air day and night, on or off shift.
        demand = p["fad"] * (0.75 * load + 0.35 * faults.get("leak", 0.0))
        delivery = p["fad"] * (1.0 - 0.4 * clog)
        steps = max(1, math.ceil(dt_s / _SUBSTEP_S))
        sub = dt_s / steps
        loaded_time = 0.0
        for _ in range(steps):
            running = speed > 0.5
            if not running:
                self.loaded = False
            elif self.pressure <= p["cut_in"]:
                self.loaded = True
            elif self.pressure >= p["cut_out"]:
                self.loaded = False
            inflow = delivery if self.loaded else 0.0
            self.pressure += (inflow - demand) / 60.0 * sub / p["receiver_m3"]
            self.pressure = max(0.0, self.pressure)
            loaded_time += sub if self.loaded else 0.0
        frac = loaded_time / dt_s
        # Duty as the controller shows it: a 10-minute moving average of the loaded fraction.
        alpha = 1.0 - math.exp(-dt_s / 600.0)
        self.duty += (frac - self.duty) * alpha if self._warm else frac - self.duty
        volts = self.voltage(t_s)
        amb = self.ambient.at(t_s)
        current = 0.0
        if speed > 0.5:
            loaded_kw = p["rated_kw"] * (0.82 + 0.025 * self.pressure) * (1.0 - 0.12 * clog)
            unloaded_kw = 0.3 * p["rated_kw"]
            kw = frac * loaded_kw + (1.0 - frac) * unloaded_kw
            kw *= 1.0 + 0.02 * faults.get("misalignment", 0.0)
            current = motor_current(kw / 0.94, volts)
        heat = 1.0 + 2.2 * faults.get("overheating", 0.0)
        oil_target = amb + (12.0 * speed + 45.0 * self.duty + 10.0 * clog) * heat
        self.oil_temp = self.lag(self.oil_temp, oil_target, dt_s, 600.0)
        discharge_temp = self.oil_temp + (8.0 + 12.0 * clog) * frac
        # Protective trip: hold off until the oil is back below 75 °C (manual restart).
        if discharge_temp >= p["trip_temp"]:
            self.tripped = True
        elif self.tripped and self.oil_temp < 75.0:
            self.tripped = False
        self.op.force_off(self.tripped)
        vib = self.vibration(p["vibration_base"], speed, frac, faults)
        self.mark_warm()
        return {
            "discharge_pressure": self.pressure + 0.25 * frac,
            "motor_current": current,
            "oil_temp": self.oil_temp,
            "discharge_temp": discharge_temp,
            "intake_temp": amb,
            "vibration_rms": vib,
            "loaded_duty": 100.0 * self.duty,
        }
