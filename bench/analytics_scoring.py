"""Streaming-scorer throughput: assets scored per second per core (8 sensors each).

``--train-rows`` sets the baseline length (1 s rows): the default 400 is SKAB's protocol (the
long-horizon training envelope stays idle); 86400 (a day) is what a service baseline of a day
or more looks like, with every channel active.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from analytics.scorer import StreamingScorer

N_SENSORS = 8


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows at 1 s of 8 correlated sensors."""
    rng = np.random.default_rng(seed)
    load = np.convolve(rng.normal(size=n + 30), np.ones(30) / 30, mode="valid")[:n]
    mix = rng.normal(size=N_SENSORS)
    values = 10 + load[:, None] * mix + rng.normal(0, 0.2, (n, N_SENSORS))
    return values, np.arange(n, dtype=np.float64)


def main() -> None:
    """Fit one scorer per asset, then time row-by-row updates across all assets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--rows", type=int, default=500, help="scored rows per asset")
    parser.add_argument("--train-rows", type=int, default=400, help="baseline rows per asset")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sensors = [f"s{k}" for k in range(N_SENSORS)]
    scorers, data = [], []
    fit_start = time.process_time()
    n_train = args.train_rows
    for a in range(args.assets):
        values, times = synthetic(n_train + args.rows, seed=a)
        scorers.append(StreamingScorer().fit(values[:n_train], times[:n_train], sensors))
        data.append((values, times))
    fit_s = (time.process_time() - fit_start) / args.assets
    start = time.process_time()  # CPU time of this process = one core's worth of work
    for k in range(n_train, n_train + args.rows):
        for scorer, (values, times) in zip(scorers, data, strict=True):
            scorer.update(values[k], times[k])
    cpu = time.process_time() - start
    updates = args.assets * args.rows
    result = {
        "sensors_per_asset": N_SENSORS,
        "train_rows": n_train,
        "envelope_active": bool(scorers[0].envelope_.active_),
        "asset_updates": updates,
        "assets_scored_per_second_per_core": round(updates / cpu, 1),
        "microseconds_per_asset_update": round(1e6 * cpu / updates, 1),
        "fit_seconds_per_asset": round(fit_s, 4),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
