"""The Reading model and the validation rules every source applies before a reading is accepted."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from telemetry.errors import ValidationError

Quality = Literal["good", "uncertain", "bad"]
QUALITIES: frozenset[str] = frozenset(("good", "uncertain", "bad"))

# Field keys that would collide with InfluxDB's time column, our tags, or the quality field.
RESERVED_SENSOR_NAMES: frozenset[str] = frozenset(("time", "site", "asset", "quality"))

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """Bounds applied to every reading; each has a rationale in its comment."""

    # Names end up in MQTT topics, InfluxDB tags and URLs: long enough for real tag names.
    max_name_length: int = 128
    # A gateway frame with hundreds of channels is plausible; thousands is a bug or an attack.
    max_sensors: int = 256
    # Ten years of backfill covers any realistic history import.
    max_age_s: float = 10 * 365.25 * 86400
    # Device clocks drift and accelerated simulations run ahead; a day catches unit mix-ups
    # (ms sent as ns, s sent as ms) while tolerating skew.
    max_future_s: float = 86400.0
    # A JSON batch or line-protocol body larger than this is refused whole (memory bound).
    max_batch: int = 10_000


DEFAULT_LIMITS = ValidationLimits()


@dataclass(slots=True)
class Reading:
    """One timestamped set of sensor values from one asset.

    ``time_ns`` is nanoseconds since the Unix epoch (UTC). The constructor does not validate
    (so trusted code paths stay cheap); decoders validate everything that comes from outside.
    """

    site: str
    asset: str
    time_ns: int
    values: dict[str, float]
    quality: Quality | None = field(default=None)

    @property
    def time(self) -> datetime:
        """The timestamp as an aware UTC datetime (to the microsecond; ``time_ns`` is exact)."""
        return datetime.fromtimestamp(self.time_ns / NS_PER_S, tz=UTC)


def now_ns() -> int:
    """The current wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()


# Names repeat on every reading of an asset: remembering the valid ones makes validation a set
# lookup on the hot path (bounded, so a flood of distinct names cannot grow it without end).
_VALID_NAMES: set[tuple[str, int]] = set()
_VALID_NAMES_MAX = 100_000
_FORBIDDEN = re.compile(r"[/+#\\]")


def validate_name(name: object, *, what: str, where: str, limits: ValidationLimits) -> str:
    """Check a site, asset or sensor name; return it unchanged or raise ValidationError."""
    if type(name) is str and (name, limits.max_name_length) in _VALID_NAMES:
        return name
    if not isinstance(name, str):
        raise ValidationError(
            f"{what} must be a string, got {type(name).__name__}", where=where, reason="wrong_type"
        )
    if not name:
        raise ValidationError(f"{what} must not be empty", where=where, reason="bad_name")
    if len(name) > limits.max_name_length:
        raise ValidationError(
            f"{what} is {len(name)} characters long; the limit is {limits.max_name_length}",
            where=where,
            reason="bad_name",
        )
    if name != name.strip():
        raise ValidationError(
            f"{what} {name!r} has leading or trailing white space", where=where, reason="bad_name"
        )
    # '/', '+' and '#' break MQTT topics; a backslash makes line-protocol escapes ambiguous;
    # control characters (newlines above all) break every text protocol we speak.
    if not name.isprintable() or _FORBIDDEN.search(name):
        char = next(c for c in name if c in "/+#\\" or not c.isprintable())
        raise ValidationError(
            f"{what} {name!r} contains the forbidden character {char!r}",
            where=where,
            reason="bad_name",
        )
    if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
        _VALID_NAMES.clear()
    _VALID_NAMES.add((name, limits.max_name_length))
    return name


def validate_value(value: object, *, where: str) -> float:
    """Coerce a sensor value to a finite float or raise ValidationError (bools are not numbers)."""
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"sensor value must be a number, got {type(value).__name__}",
            where=where,
            reason="wrong_type",
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValidationError(
            f"sensor value must be finite, got {number!r}", where=where, reason="non_finite"
        )
    return number


def _shown(time_ns: int) -> str:
    """A timestamp for an error message: whole when short, its size when absurdly long (an
    integer of more than 4,300 digits cannot even be printed by default)."""
    digits = len(str(abs(time_ns))) if abs(time_ns).bit_length() < 4000 else None
    if digits is not None and digits <= 30:
        return str(time_ns)
    sign = "-" if time_ns < 0 else ""
    size = digits if digits is not None else int(abs(time_ns).bit_length() * math.log10(2)) + 1
    return f"{sign}<a {size}-digit number>"


def validate_time(time_ns: int, *, where: str, limits: ValidationLimits, now: int) -> int:
    """Reject timestamps absurdly far in the past or future (usually a unit mix-up)."""
    if time_ns < now - int(limits.max_age_s * NS_PER_S):
        raise ValidationError(
            f"timestamp {_shown(time_ns)} ns is more than "
            f"{limits.max_age_s / 86400:.0f} days in the past",
            where=where,
            reason="time_out_of_range",
        )
    if time_ns > now + int(limits.max_future_s * NS_PER_S):
        raise ValidationError(
            f"timestamp {_shown(time_ns)} ns is more than "
            f"{limits.max_future_s:.0f} s in the future",
            where=where,
            reason="time_out_of_range",
        )
    return time_ns


def build_reading(
    *,
    site: object,
    asset: object,
    time_ns: int,
    sensors: object,
    quality: object = None,
    where: str = "",
    limits: ValidationLimits = DEFAULT_LIMITS,
    now: int | None = None,
) -> Reading:
    """Validate raw decoded parts and build a Reading; every problem raises ValidationError."""
    prefix = f"{where}." if where else ""
    site_name = validate_name(site, what="site", where=f"{prefix}site", limits=limits)
    asset_name = validate_name(asset, what="asset", where=f"{prefix}asset", limits=limits)
    if not isinstance(sensors, dict):
        raise ValidationError(
            f"sensors must be an object mapping names to numbers, got {type(sensors).__name__}",
            where=f"{prefix}sensors",
            reason="wrong_type",
        )
    if not sensors:
        raise ValidationError(
            "sensors must hold at least one value", where=f"{prefix}sensors", reason="empty_sensors"
        )
    if len(sensors) > limits.max_sensors:
        raise ValidationError(
            f"{len(sensors)} sensors in one reading; the limit is {limits.max_sensors}",
            where=f"{prefix}sensors",
            reason="too_many_sensors",
        )
    values: dict[str, float] = {}
    max_length = limits.max_name_length
    for name, value in sensors.items():
        # Fast path for the common case (a known-good name, a finite float): no location text.
        if (
            type(value) is float
            and type(name) is str
            and (name, max_length) in _VALID_NAMES
            and name not in RESERVED_SENSOR_NAMES
            and math.isfinite(value)
        ):
            values[name] = value
            continue
        sensor_where = f"{prefix}sensors.{name}"
        validate_name(name, what="sensor name", where=sensor_where, limits=limits)
        if name in RESERVED_SENSOR_NAMES:
            raise ValidationError(
                f"sensor name {name!r} is reserved", where=sensor_where, reason="bad_name"
            )
        values[name] = validate_value(value, where=sensor_where)
    # isinstance first: a list or dict is unhashable and must be rejected, not raise TypeError.
    if quality is not None and not (isinstance(quality, str) and quality in QUALITIES):
        raise ValidationError(
            f"quality must be one of good, uncertain, bad; got {quality!r}",
            where=f"{prefix}quality",
            reason="bad_quality",
        )
    validate_time(
        time_ns, where=f"{prefix}time", limits=limits, now=now_ns() if now is None else now
    )
    return Reading(site_name, asset_name, time_ns, values, cast(Quality | None, quality))


def validate_reading(
    reading: Reading, *, limits: ValidationLimits = DEFAULT_LIMITS, now: int | None = None
) -> Reading:
    """Validate an already-built Reading (for example one made by trusted code from raw input)."""
    return build_reading(
        site=reading.site,
        asset=reading.asset,
        time_ns=reading.time_ns,
        sensors=reading.values,
        quality=reading.quality,
        limits=limits,
        now=now,
    )
