"""Where machines live: site ambient temperature and the operating regime (schedule, load).

Ambient temperature is a pure function of time (daily cycle, a season, and "weather" made of
slow sinusoids with per-site random phases), so every asset of a site sees the same weather
no matter in which order assets are stepped. The operating regime is stateful (start/stop
ramps, random set-point changes, unplanned stops) and owned by one asset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from device_sims.seeding import Noise, derive_seed

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
# 1970-01-01 was a Thursday: shift so that weekday 0 is Monday.
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class SiteClimate:
    """Ambient model of one site; indoor sites see a damped copy of the outdoor weather."""

    mean_c: float = 12.0
    daily_amp_c: float = 5.0
    yearly_amp_c: float = 8.0
    weather_amp_c: float = 3.0
    indoor: bool = False
    utc_offset_h: float = 0.0


@dataclass
class Ambient:
    """Ambient temperature (°C) at a site, a deterministic function of time."""

    climate: SiteClimate
    seed: int
    _phases: tuple[float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        noise = Noise(derive_seed(self.seed, "weather"))
        self._phases = (
            noise.uniform() * math.tau,
            noise.uniform() * math.tau,
            noise.uniform() * math.tau,
        )

    def local_hours(self, t_s: float) -> float:
        """Local clock hours since the epoch (for daily and weekly cycles)."""
        return t_s / 3600.0 + self.climate.utc_offset_h

    def outdoor_c(self, t_s: float) -> float:
        """Outdoor temperature: daily peak at 15:00, yearly peak late July, slow weather."""
        c = self.climate
        hour = self.local_hours(t_s) % 24.0
        daily = c.daily_amp_c * math.cos(math.tau * (hour - 15.0) / 24.0)
        year_frac = (t_s / (365.25 * DAY_S)) % 1.0
        yearly = c.yearly_amp_c * math.cos(math.tau * (year_frac - 0.56))
        p1, p2, p3 = self._phases
        days = t_s / DAY_S
        weather = c.weather_amp_c * (
            0.5 * math.sin(math.tau * days / 2.3 + p1)
            + 0.3 * math.sin(math.tau * days / 4.1 + p2)
            + 0.2 * math.sin(math.tau * days / 7.7 + p3)
        )
        return c.mean_c + daily + yearly + weather

    def at(self, t_s: float) -> float:
        """Ambient around the machine: outdoor, or a building that buffers it (≈21 °C)."""
        outdoor = self.outdoor_c(t_s)
        if self.climate.indoor:
            return 21.0 + 0.15 * (outdoor - 12.0)
        return outdoor


def weekday_hour(t_s: float, utc_offset_h: float) -> tuple[int, float]:
    """(weekday with Monday = 0, local hour of day) at epoch seconds t_s."""
    local_h = t_s / 3600.0 + utc_offset_h
    day = math.floor(local_h / 24.0)
    return (day + _EPOCH_WEEKDAY) % 7, local_h - day * 24.0


SCHEDULES = ("continuous", "two_shift", "day_shift", "office_hours")


def scheduled_on(schedule: str, weekday: int, hour: float) -> bool:
    """Whether a schedule wants the machine running at this local weekday and hour."""
    if schedule == "continuous":
        return True
    if schedule == "two_shift":  # 06:00-22:00 Monday to Saturday
        return weekday < 6 and 6.0 <= hour < 22.0
    if schedule == "day_shift":  # 07:00-16:00 Monday to Friday
        return weekday < 5 and 7.0 <= hour < 16.0
    if schedule == "office_hours":  # HVAC: 06:00-20:00 Monday to Friday
        return weekday < 5 and 6.0 <= hour < 20.0
    raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class DutyProfile:
    """How a machine is run: schedule, load level and how much load wanders."""

    schedule: str = "continuous"
    base_load: float = 0.7
    daily_amp: float = 0.15  # load swing with the working day, peak mid-afternoon
    weekend_factor: float = 0.8  # load multiplier on Saturday and Sunday
    wander: float = 0.05  # standard deviation of the slow random load component
    steps_per_day: float = 3.0  # random set-point changes per day
    stops_per_week: float = 0.5  # unplanned stops while scheduled on
    ramp_s: float = 20.0  # start/stop speed time constant (VFD ramp, inertia)


class Operation:
    """The operating state of one machine: whether it runs, its speed fraction and its load."""

    def __init__(self, profile: DutyProfile, utc_offset_h: float, noise: Noise) -> None:
        self.profile = profile
        self.utc_offset_h = utc_offset_h
        self.noise = noise
        self.speed = 0.0
        self.running = False
        # Start from a random point of the load process, so twin assets do not move in step.
        self._wander = profile.wander * noise.normal()
        self._step = 0.25 * (noise.uniform() - 0.5)
        self._stopped_until_s = -math.inf
        self._forced_off = False
        self._first = True

    def force_off(self, off: bool) -> None:
        """A protective trip (e.g. over-temperature) holds the machine off until released."""
        self._forced_off = off

    def update(self, t_s: float, dt_s: float) -> tuple[float, float]:
        """Advance by dt_s and return (speed fraction 0..1, load fraction 0..~1.1)."""
        p, noise = self.profile, self.noise
        weekday, hour = weekday_hour(t_s, self.utc_offset_h)
        wanted = scheduled_on(p.schedule, weekday, hour)
        # Unplanned stops (jams, operator stops) arrive as a Poisson process while scheduled.
        if wanted and p.stops_per_week > 0 and noise.chance(p.stops_per_week * dt_s / WEEK_S):
            self._stopped_until_s = t_s + 600.0 + 3000.0 * noise.uniform()
        self.running = wanted and t_s >= self._stopped_until_s and not self._forced_off
        target = 1.0 if self.running else 0.0
        if self._first:  # a simulation starts with machines already in their steady state
            self.speed, self._first = target, False
        self.speed += (target - self.speed) * (1.0 - math.exp(-dt_s / max(p.ramp_s, 1e-3)))
        if self.speed < 1e-4:
            self.speed = 0.0
        # Load: slow Ornstein-Uhlenbeck wander (30 min memory) plus occasional set-point steps.
        decay = math.exp(-dt_s / 1800.0)
        self._wander = self._wander * decay + p.wander * math.sqrt(1 - decay * decay) * (
            noise.normal()
        )
        if p.steps_per_day > 0 and noise.chance(p.steps_per_day * dt_s / DAY_S):
            self._step = 0.25 * (noise.uniform() - 0.5)
        daily = p.daily_amp * math.cos(math.tau * (hour - 14.0) / 24.0)
        weekly = p.weekend_factor if weekday >= 5 else 1.0
        load = (p.base_load + daily + self._step + self._wander) * weekly
        return self.speed, min(1.1, max(0.05, load))
