"""Backfill speed of device_sims: readings and sensor values generated per second.

    .venv/bin/python bench/sim_backfill.py [--scenario scenarios/demo.yaml] [--duration 2d]
        [--format none|jsonl|lp] [--json bench/results/sim_backfill.json]

``none`` measures the simulation alone; ``jsonl``/``lp`` add encoding (written to /dev/null).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from device_sims.fleet import TransportOptions
from device_sims.runner import Runner, RunOptions
from device_sims.scenario import load_scenario
from device_sims.timefmt import parse_duration_ns


def run(scenario_path: str, duration: str, fmt: str) -> dict[str, object]:
    """One timed backfill."""
    scenario = load_scenario(scenario_path)
    values = 0

    def count(sample: object) -> None:
        nonlocal values
        values += len(sample.sensors)  # type: ignore[attr-defined]

    with open(os.devnull, "wb") as sink:
        runner = Runner(
            scenario,
            RunOptions(
                mode="backfill",
                duration_ns=parse_duration_ns(duration),
                out=None if fmt == "none" else sink,
                out_format="lp" if fmt == "lp" else "jsonl",
                use_transports=False,
            ),
            TransportOptions(),
        )
        started = time.perf_counter()
        readings = runner.run(on_sample=count)
        elapsed = time.perf_counter() - started
    return {
        "scenario": scenario_path,
        "assets": len(scenario.assets),
        "simulated": duration,
        "format": fmt,
        "readings": readings,
        "sensor_values": values,
        "seconds": round(elapsed, 3),
        "readings_per_s": round(readings / elapsed),
        "values_per_s": round(values / elapsed),
    }


def main() -> int:
    """Run the benchmark for each format and print/write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="scenarios/demo.yaml")
    parser.add_argument("--duration", default="2d")
    parser.add_argument("--format", action="append", choices=("none", "jsonl", "lp"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [
        run(args.scenario, args.duration, fmt) for fmt in args.format or ["none", "jsonl", "lp"]
    ]
    for r in results:
        print(
            f"{r['format']:>5}: {r['readings']:>9} readings in {r['seconds']:>7.2f}s = "
            f"{r['readings_per_s']:>8} readings/s, {r['values_per_s']:>9} values/s"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
