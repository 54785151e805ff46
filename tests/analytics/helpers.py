"""Typed factories of synthetic sensor data for the analytics tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SENSORS = ["flow", "pressure", "current", "temperature"]


def make_correlated_rows(n: int, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """n rows at 1 s of 4 sensors driven by one shared load signal plus noise."""
    rng = np.random.default_rng(seed)
    # A stationary AR(1) load (about 10 s memory) shared by three of the sensors.
    load = np.zeros(n)
    shocks = rng.normal(0, 0.45, n)
    for k in range(1, n):
        load[k] = 0.9 * load[k - 1] + shocks[k]
    values = np.stack(
        [
            30 + 2.0 * load + rng.normal(0, 0.3, n),
            3 + 0.5 * load + rng.normal(0, 0.05, n),
            5 + 1.0 * load + rng.normal(0, 0.1, n),
            60 + rng.normal(0, 0.2, n),
        ],
        axis=1,
    )
    return values, np.arange(n, dtype=np.float64)


def write_csv(path: str, values: FloatArray, sep: str = ";", labels: bool = True) -> list[str]:
    """Write a SKAB-like CSV (datetime, sensors, optional label columns); return time texts."""
    base = np.datetime64("2024-01-01T00:00:00")
    stamps = [str(base + np.timedelta64(k, "s")).replace("T", " ") for k in range(len(values))]
    header = ["datetime", *SENSORS] + (["anomaly", "changepoint"] if labels else [])
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(sep.join(header) + "\n")
        for stamp, row in zip(stamps, values, strict=True):
            cells = [stamp, *(f"{v:.5f}" for v in row)] + (["0.0", "0.0"] if labels else [])
            fh.write(sep.join(cells) + "\n")
    return stamps


MACHINE_SENSORS = ["current", "flow", "vibration", "bearing_temp", "ambient"]


def make_machine_days(
    days: float, seed: int = 0, load_walk: float = 0.0, wear: float = 0.0, step_s: float = 60.0
) -> tuple[FloatArray, FloatArray]:
    """Rows every ``step_s`` of a motor whose first four sensors follow one load signal.

    ``load_walk``: sd per row of a random walk added to the load (healthy common drift, e.g.
    demand changing over days). ``wear``: a bearing-wear-like ramp that lifts vibration and
    bearing temperature by that many load-fluctuation sd from 10 % of the run to its end, with
    the load unchanged (the two sensors leave their relation to current and flow).
    """
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / step_s)
    load = np.zeros(n)
    shocks = rng.normal(0, 1.0, n)
    for k in range(1, n):
        load[k] = 0.8 * load[k - 1] + shocks[k]
    load += np.cumsum(rng.normal(0, load_walk, n))
    ramp = np.clip((np.arange(n) - 0.1 * n) / (0.9 * n), 0.0, None) * wear
    values = np.stack(
        [
            20 + 1.0 * load + rng.normal(0, 0.3, n),
            50 + 2.0 * load + rng.normal(0, 0.6, n),
            2 + 0.2 * load + 0.2 * ramp + rng.normal(0, 0.06, n),
            40 + 0.5 * load + 0.5 * ramp + rng.normal(0, 0.15, n),
            15 + np.cumsum(rng.normal(0, 0.05, n)),
        ],
        axis=1,
    )
    return values, np.arange(n, dtype=np.float64) * step_s
