"""Command line: ``python -m analytics replay|evaluate|run`` (``run``: the live detector)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from analytics.data import read_sensor_csv
from analytics.evaluate import evaluate, format_report
from analytics.replay import replay, write_decisions

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("replay", help="fit on the first rows of a CSV, stream the rest")
    rep.add_argument("input", type=Path, help="CSV with a header, a time column and sensors")
    rep.add_argument("--train-rows", type=int, required=True, help="rows used for fitting")
    rep.add_argument("--out", type=Path, required=True, help="output CSV (datetime;anomaly;score)")
    rep.add_argument("--time-col", default="datetime", help="name of the time column")

    ev = sub.add_parser("evaluate", help="SKAB-style evaluation of the default settings")
    ev.add_argument("root", type=Path, help="dataset folder holding valve1/ and anomaly-free/")
    ev.add_argument("--train-rows", type=int, default=400, help="rows fitted per file")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")

    sub.add_parser(
        "run", help="live detector service: score InfluxDB data, post alerts (EQUIPMON_* env)"
    )
    return parser


def run_service() -> int:
    """Run the detector service from environment settings until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # Imported here so that offline commands need no service settings.
    from analytics.service import DetectorService
    from analytics.settings import ServiceSettings

    with DetectorService(ServiceSettings()) as service:
        service.run(stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "replay":
            table = read_sensor_csv(args.input, time_col=args.time_col)
            result = replay(table, args.train_rows)
            write_decisions(args.out, table, result)
            logger.info("wrote %s (%d alarm rows)", args.out, int(result.alarm.sum()))
        elif args.command == "evaluate":
            report = evaluate(args.root, train_rows=args.train_rows)
            text = json.dumps(report.as_dict(), indent=2) if args.json else format_report(report)
            sys.stdout.write(text + "\n")
        elif args.command == "run":
            return run_service()
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0
