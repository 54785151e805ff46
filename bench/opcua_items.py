"""OPC UA source cost: 1,000 monitored items changing at 1 Hz, CPU of the reading side.

Starts the simulated controller (``python -m device_sims opcua``, its own process: its CPU is
not counted) with 125 machines × 8 variables, subscribes to all of them through the
collector's OPC UA source, which gathers the notifications, builds the readings and their line
protocol as in the service, and measures this process's CPU over ``--seconds``. The figure to
hold: under 10 % of one core. Prints JSON too (``bench/results/opcua_items.json``).

    .venv/bin/python -m bench.opcua_items [--items 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from bench.common import report
from collector.opcua.settings import OpcUaServerSettings
from collector.sources.feed import Feed
from collector.sources.opcua import OpcUaSource
from collector.spool import DeadLetter, SpoolEntry
from stack.process import free_port, port_open


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    assets = max(1, args.items // 8)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "device_sims", "opcua", "--port", str(port),
         "--assets", str(assets), "--sensors", "8", "--rate-hz", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    readings = 0
    lines = 0

    class Counting:
        """Stands in for the feed: counts what the source hands over (no spool: its cost is
        the committer's, the same for every source)."""

        def submit(
            self, items: Sequence[SpoolEntry | DeadLetter], tokens: Sequence[object]
        ) -> None:
            nonlocal readings, lines
            for item in items:
                if isinstance(item, SpoolEntry):
                    readings += item.readings
                    lines += item.body.count(b"\n")

    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            if time.monotonic() > deadline:
                raise SystemExit("the OPC UA server did not start")
            time.sleep(0.1)
        settings = OpcUaServerSettings.model_validate(
            {
                "name": "bench",
                "url": f"opc.tcp://127.0.0.1:{port}/equipmon/",
                "site": "plant-a",
                "groups": [{"browse": "2:plant-a"}],
            }
        )
        with tempfile.TemporaryDirectory() as folder:
            source = OpcUaSource(settings, cast(Feed, Counting()), data_dir=Path(folder))
            source.start()
            deadline = time.monotonic() + 120
            while readings < assets * 3:  # subscribed and three scans in: steady state
                if time.monotonic() > deadline:
                    raise SystemExit(f"no steady stream: {source.health()}")
                time.sleep(0.2)
            cpu0, wall0, readings0 = _cpu_s(), time.monotonic(), readings
            time.sleep(args.seconds)
            cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
            got = readings - readings0
            items = source.status.items
            source.stop()
    finally:
        server.kill()
        server.wait()
    report(
        "opcua_items",
        {
            "monitored_items": items,
            "seconds": round(wall, 1),
            "readings_per_s": round(got / wall, 1),
            "values_per_s": round(got * 8 / wall, 1),
            "cpu_share_of_one_core": round(cpu / wall, 4),
            "target_cpu_share": 0.10,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
