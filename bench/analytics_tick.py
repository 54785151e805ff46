"""Detector-service tick latency: 1,000 assets × 8 sensors in a real InfluxDB, fitted models.

Each asset gets a stored baseline (``data_dir/models``, as the service saves them), so the
first tick loads and refits every model; then every tick writes ``--tick-s`` seconds of 1 Hz
points of all assets and runs the real ``DetectorService.tick`` (read + score + alarm and
instrument decisions + status items). Prints read / rest-of-tick / total latency and the
number of InfluxQL queries per tick, as JSON too (``bench/results/analytics_tick.json``).

    .venv/bin/python -m bench.analytics_tick [--assets 1000] [--ticks 20] [--influx-url URL]
        [--profile FILE]

``--profile FILE`` runs the timed ticks (not the first, loading one) under cProfile, writes
the stats to FILE (``python -m pstats FILE``, or snakeviz) and prints the top functions; the
tick figures of a profiled run include the profiler's own overhead. The load average (1 min)
at the first timed tick and at the end is reported beside the figures: CPU per tick grows with
the machine's load, so only runs paired in time compare.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from analytics.model_store import Baseline, ModelStore
from analytics.service import DetectorService
from analytics.settings import ServiceSettings
from analytics.source import AssetKey, AssetWindow
from bench.common import influx_url, report
from telemetry.influx.client import InfluxClient, Series
from telemetry.influx.settings import InfluxSettings
from telemetry.progress import progress

N_SENSORS = 8
BASELINE_S = 300
SENSORS = tuple(f"s{k}" for k in range(N_SENSORS))


def synthetic(n: int, seed: int) -> np.ndarray:
    """n rows at 1 s of 8 sensors sharing one smooth load signal."""
    rng = np.random.default_rng(seed)
    load = np.convolve(rng.normal(size=n + 30), np.ones(30) / 30, mode="valid")[:n]
    mix = rng.normal(size=N_SENSORS)
    return 10 + load[:, None] * mix + rng.normal(0, 0.2, (n, N_SENSORS))


def line_protocol(assets: list[str], data: dict[str, np.ndarray], rows: range, t0_s: int) -> bytes:
    """Line protocol of rows of every asset (row k at t0_s + k seconds)."""
    lines = []
    for asset in assets:
        values = data[asset]
        for k in rows:
            fields = ",".join(f"{s}={v:.4f}" for s, v in zip(SENSORS, values[k], strict=True))
            lines.append(f"telemetry,site=bench,asset={asset} {fields} {(t0_s + k) * 10**9}")
    return ("\n".join(lines) + "\n").encode()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Probe:
    """Counts InfluxQL queries and times the source's reads of one service (bench only)."""

    def __init__(self, client: InfluxClient, service: DetectorService) -> None:
        self.queries = 0
        self.reads: list[float] = []
        real_query, real_fetch = client.query, service.source.fetch

        def counted_query(influxql: str, *, chunk_size: int = 10_000) -> list[Series]:
            self.queries += 1
            return real_query(influxql, chunk_size=chunk_size)

        def timed_fetch() -> dict[AssetKey, AssetWindow]:
            began = time.perf_counter()
            try:
                return real_fetch()
            finally:
                self.reads.append(time.perf_counter() - began)

        client.query = counted_query  # type: ignore[method-assign]
        service.source.fetch = timed_fetch  # type: ignore[method-assign]


def run_ticks(
    service: DetectorService,
    client: InfluxClient,
    data: dict[str, np.ndarray],
    args: argparse.Namespace,
    *,
    t0: int,
    clock: list[int],
) -> dict[str, Any]:
    """Write a tick's points, tick, repeat; the figures."""
    probe = Probe(client, service)
    results: dict[str, Any] = {}
    totals, cpu, queries = [], [], []
    profiler = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()[0]
    for tick in progress(range(args.ticks + 1), "ticks"):
        if tick == 1:  # the timed ticks start: the machine's load then and at the end
            load_before = os.getloadavg()[0]
        rows = range(BASELINE_S + tick * args.tick_s, BASELINE_S + (tick + 1) * args.tick_s)
        client.write_lines(line_protocol(list(data), data, rows, t0))
        clock[0] = (t0 + rows.stop) * 10**9
        before = probe.queries
        began, began_cpu = time.perf_counter(), time.process_time()
        if profiler is not None and tick > 0:
            scored = profiler.runcall(service.tick)
        else:
            scored = service.tick()
        elapsed = time.perf_counter() - began
        if tick == 0:  # loads and refits every stored model
            results["first_tick_load_and_refit_s"] = round(elapsed, 2)
            continue
        totals.append(elapsed)
        cpu.append(time.process_time() - began_cpu)
        queries.append(probe.queries - before)
        assert scored == args.assets * args.tick_s, scored
    if profiler is not None:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)
    tick_s, read_s = statistics.median(totals), statistics.median(probe.reads[1:])
    results.update(
        {
            "ticks_timed": len(totals),
            "influx_queries_per_tick": max(queries),
            "tick_ms_median": round(1e3 * tick_s, 1),
            "tick_ms_p95": round(1e3 * percentile(totals, 0.95), 1),
            "tick_ms_max": round(1e3 * max(totals), 1),
            "read_ms_median": round(1e3 * read_s, 1),
            "score_and_decide_ms_median": round(1e3 * (tick_s - read_s), 1),
            "tick_cpu_ms_median": round(1e3 * statistics.median(cpu), 1),
            "asset_rows_per_second": round(args.assets * args.tick_s / tick_s, 1),
            "realtime_headroom": round(args.tick_s / tick_s, 2),
            # CPU seconds inflate with the machine's load (shared cores and caches): compare
            # runs paired in time, at a similar load.
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
    )
    return results


def main() -> None:
    """Store baselines, then time real ticks against InfluxDB."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--tick-s", type=int, default=10, help="seconds of 1 Hz data per tick")
    parser.add_argument("--influx-url", help="an InfluxDB to use (default: start one)")
    parser.add_argument("--profile", help="cProfile the timed ticks into this stats file")
    parser.add_argument("--json", help="result file (default bench/results/analytics_tick.json)")
    args = parser.parse_args()
    assets = [f"a{n:04d}" for n in range(args.assets)]
    total_rows = BASELINE_S + args.tick_s * (args.ticks + 1)
    data = {a: synthetic(total_rows, seed=n) for n, a in enumerate(assets)}
    t0 = int(time.time()) - total_rows - 60
    clock = [(t0 + BASELINE_S) * 10**9]
    with influx_url(args.influx_url) as url, tempfile.TemporaryDirectory() as folder:
        influx = InfluxSettings(url=url, database="bench_analytics_tick", api="v1")
        client = InfluxClient(influx)
        client.ensure_database()
        store = ModelStore(Path(folder) / "models")
        times = t0 + np.arange(BASELINE_S, dtype=np.float64)
        for asset in assets:
            store.save(("bench", asset), Baseline(SENSORS, times, data[asset][:BASELINE_S]))
        settings = ServiceSettings(
            influx=influx,
            train_after_s=BASELINE_S,
            lookback_s=args.tick_s + 1,
            tick_s=args.tick_s,
            data_dir=Path(folder),
        )
        with DetectorService(
            settings,
            influx=client,
            poster=lambda _body: None,
            status_poster=lambda _items: None,
            clock_ns=lambda: clock[0],
        ) as service:
            service.start(http=False, pollers=False)
            results = run_ticks(service, client, data, args, t0=t0, clock=clock)
            results["models_loaded"] = service.metrics.registry.get_sample_value(
                "equipmon_analytics_models_total", {"event": "loaded"}
            )
        client.close()
    report(
        "analytics_tick",
        {
            "assets": args.assets,
            "sensors_per_asset": N_SENSORS,
            "rows_per_asset_per_tick": args.tick_s,
            **results,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
