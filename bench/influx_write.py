"""Readings/s written through telemetry's InfluxClient for batch sizes 1, 100 and 5,000, next to a
raw line-protocol POST of the same data (the ceiling), so the client's overhead is a ratio.

    .venv/bin/python -m bench.influx_write [--url http://127.0.0.1:8086] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import urllib3

from bench.common import influx_url, report
from telemetry.influx.client import InfluxClient, quote_ident
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading, now_ns

SENSORS = [
    "vibration_rms",
    "bearing_temp",
    "motor_current",
    "voltage",
    "pressure",
    "flow",
    "speed",
    "ambient",
]


def make_readings(count: int, start_ns: int, seed: int) -> list[Reading]:
    rng = random.Random(seed)
    return [
        Reading(
            "plant-a",
            f"asset-{i % 50:03d}",
            start_ns + i * 1_000,
            {s: rng.uniform(0, 100) for s in SENSORS},
        )
        for i in range(count)
    ]


def timed(batches: list[Any], write: Callable[[Any], None]) -> float:
    started = time.perf_counter()
    for batch in batches:
        write(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="an InfluxDB 1.x to use (default: start a throw-away one)")
    parser.add_argument("--json", help="where to write the JSON results")
    parser.add_argument("--readings", type=int, default=100_000, help="readings per batch size")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with influx_url(args.url) as url:
        settings = InfluxSettings(url=url, database=f"bench_{uuid.uuid4().hex[:8]}", api="v1")
        client = InfluxClient(settings)
        client.ensure_database()
        http = urllib3.PoolManager()
        raw_url = f"{url}/write?db={settings.database}&precision=ns"
        base = now_ns() - 86400 * 10**9
        for run, batch_size in enumerate((1, 100, 5_000)):
            # One reading per request is slow by nature: fewer readings keep the run short.
            count = min(args.readings, 3_000) if batch_size == 1 else args.readings
            readings = make_readings(count, base + run * 10**12, seed=run)
            batches = [readings[i : i + batch_size] for i in range(0, count, batch_size)]
            client_s = timed(batches, client.write_readings)
            # The ceiling: the same data, formatted in advance, POSTed as bytes (shifted in time so
            # it does not overwrite the client's points).
            shifted = [
                [Reading(r.site, r.asset, r.time_ns + 5 * 10**11, r.values) for r in b]
                for b in batches
            ]
            bodies = [client.format(b) for b in shifted]

            def post(body: bytes) -> None:
                response = http.request("POST", raw_url, body=body)
                assert response.status == 204, response.data

            raw_s = timed(bodies, post)
            results[f"batch_{batch_size}"] = {
                "readings": count,
                "sensor_values": count * len(SENSORS),
                "client_readings_per_s": round(count / client_s),
                "raw_post_readings_per_s": round(count / raw_s),
                "client_over_raw": round((count / client_s) / (count / raw_s), 3),
            }
        client.execute(f"DROP DATABASE {quote_ident(settings.database)}")
        results["server"] = {"version": client.server_version()}  # type: ignore[dict-item]
    report("influx_write", {"results": results}, args.json)


if __name__ == "__main__":
    main()
