"""Shared by the benchmarks: printing results as JSON, and a local InfluxDB when none is given."""

from __future__ import annotations

import contextlib
import json
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stack.influxdb import InfluxDBServer


@contextlib.contextmanager
def influx_url(url: str | None) -> Iterator[str]:
    """The given URL, or a throw-away local influxd started for the run."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="equipmon-bench-") as folder:
        server = InfluxDBServer(Path(folder))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def report(name: str, results: dict[str, Any], json_path: str | None) -> None:
    """Print results as a table-like text and write them as JSON."""
    document = {
        "benchmark": name,
        "machine": platform.machine(),
        "python": platform.python_version(),
        **results,
    }
    print(json.dumps(document, indent=2))
    path = Path(json_path or f"bench/results/{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {path}")
