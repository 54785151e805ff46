"""The fault catalogue: every fault kind, its defaults and the sensor signature it leaves.

The signatures here are the contract the tests check and the detectors are meant to find;
`python -m device_sims list` prints them and docs/device_sims.md repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FaultInfo:
    """One fault kind: whether it is physical or a sensor lie, its default growth, its signature."""

    kind: str
    category: Literal["process", "sensor"]
    ramp: str  # default time from onset to full severity
    growth: float  # default curvature of the degradation curve (0 = linear)
    signature: str


_ALL = (
    FaultInfo(
        "bearing_wear",
        "process",
        "3d",
        4.0,
        "vibration_rms and bearing temperature trend up, slowly at first then faster; "
        "occasional impact spikes in vibration as the race spalls.",
    ),
    FaultInfo(
        "imbalance",
        "process",
        "1d",
        0.0,
        "vibration_rms rises with the square of speed (1x running speed); temperatures and "
        "process values barely move.",
    ),
    FaultInfo(
        "misalignment",
        "process",
        "1d",
        0.0,
        "vibration_rms rises with load, bearing/gearbox temperature rises a few °C, motor current "
        "up 1-3 %.",
    ),
    FaultInfo(
        "cavitation",
        "process",
        "2h",
        1.0,
        "pump: suction pressure falls, discharge pressure and flow drop and become noisy, "
        "vibration_rms jumps with broadband, erratic bursts.",
    ),
    FaultInfo(
        "overheating",
        "process",
        "12h",
        1.0,
        "cooling failure: motor/winding/oil temperatures climb well above what load and ambient "
        "explain; a compressor trips on over-temperature and restarts when cooled.",
    ),
    FaultInfo(
        "leak",
        "process",
        "1d",
        0.0,
        "pump: discharge pressure falls while flow and current rise; compressor: load duty and "
        "current rise, cycling continues off-shift; air handler: airflow and fan speed rise to "
        "hold duct static pressure.",
    ),
    FaultInfo(
        "clogged_filter",
        "process",
        "4d",
        2.0,
        "pump: suction pressure and flow fall, current falls; compressor: delivery falls so the "
        "loaded duty and discharge temperature rise; air handler: filter_dp rises, fan speed and "
        "current rise until at full speed airflow falls.",
    ),
    FaultInfo(
        "belt_slip",
        "process",
        "1d",
        1.0,
        "driven speed falls below motor speed x ratio and fluctuates; fan airflow or conveyor "
        "belt speed drops; motor current falls and jitters.",
    ),
    FaultInfo(
        "stuck",
        "sensor",
        "0s",
        0.0,
        "one sensor repeats the same value exactly while its correlated neighbours keep moving.",
    ),
    FaultInfo(
        "drift",
        "sensor",
        "0s",
        0.0,
        "one sensor develops an offset growing linearly with time (default severity x 10 % of "
        "its value per day); neighbours do not follow.",
    ),
    FaultInfo(
        "spikes",
        "sensor",
        "0s",
        0.0,
        "isolated single-sample outliers several times the normal value on one sensor.",
    ),
    FaultInfo(
        "dropout",
        "sensor",
        "0s",
        0.0,
        "silence: the named sensor is missing from readings, or without a sensor the whole "
        "asset stops sending (Modbus answers 'gateway target failed to respond').",
    ),
    FaultInfo(
        "wrong_scaling",
        "sensor",
        "0s",
        0.0,
        "one sensor is multiplied by a constant factor (default 10, e.g. a wrong decimal point) "
        "plus an optional offset (1.8 and 32 for a °F/°C mix-up) from onset on.",
    ),
)

FAULTS: dict[str, FaultInfo] = {info.kind: info for info in _ALL}
PROCESS_FAULTS = frozenset(k for k, v in FAULTS.items() if v.category == "process")
SENSOR_FAULTS = frozenset(k for k, v in FAULTS.items() if v.category == "sensor")
