"""Command line: ``python -m analytics replay|evaluate|evaluate-sims|run|train|config show``
(``run``: the live detector)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from analytics.settings import ServiceSettings
from telemetry.settings import explain
from telemetry.settings_show import add_config_command, epilog, render

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(
        prog="python -m analytics",
        description=__doc__,
        epilog=epilog(ServiceSettings, "python -m analytics"),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("replay", help="fit on the first rows of a CSV, stream the rest")
    rep.add_argument("input", type=Path, help="CSV with a header, a time column and sensors")
    rep.add_argument("--train-rows", type=int, required=True, help="rows used for fitting")
    rep.add_argument("--out", type=Path, required=True, help="output CSV (datetime;anomaly;score)")
    rep.add_argument(
        "--time-col",
        help="name of the time column (default: datetime, or timestamp for NAB-style files)",
    )
    rep.add_argument(
        "--strict",
        action="store_true",
        help="refuse rows out of time order or with duplicate times (default: sort, keep the "
        "last duplicate, warn)",
    )

    ev = sub.add_parser(
        "evaluate",
        help="the frozen defaults on every data set under a folder (one row per fold)",
        description="Scores every data set found under ROOT with the frozen defaults: "
        "folders of labelled SKAB-style CSVs (F1, FAR), anomaly-free recordings (false alarms "
        "per hour, time in alarm) and NAB-style series with *.labels.json (NAB score), beside "
        "the always-alarm reference.",
    )
    ev.add_argument("root", type=Path, help="folder of data sets, e.g. ../shared/datasets")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")

    es = sub.add_parser(
        "evaluate-sims", help="per-fault report of a device_sims backfill with ground truth"
    )
    es.add_argument("data", type=Path, help="device_sims backfill output (--format jsonl)")
    es.add_argument("truth", type=Path, help="its ground truth (--truth)")
    es.add_argument("--train-days", type=float, default=7.0, help="baseline per asset")

    sub.add_parser(
        "run",
        help="live detector service: score InfluxDB data, post alerts (EQUIPMON_ANALYTICS__* env)",
    )
    tr = sub.add_parser(
        "train", help="ask the running service to refit an asset on a time range (POST /train)"
    )
    tr.add_argument("--site", required=True)
    tr.add_argument("--asset", required=True)
    tr.add_argument("--start", required=True, help="RFC 3339, e.g. 2026-11-20T00:00:00Z")
    tr.add_argument("--end", required=True, help="RFC 3339")
    tr.add_argument(
        "--url",
        help="the service's HTTP port (default http://EQUIPMON_ANALYTICS__HTTP_HOST:"
        "EQUIPMON_ANALYTICS__HTTP_PORT)",
    )
    add_config_command(sub)
    return parser


def load_settings() -> ServiceSettings:
    """The service's settings from the environment; an invalid one names its variable."""
    try:
        return ServiceSettings()
    except ValidationError as exc:
        raise ValueError(explain(ServiceSettings, exc)) from None


def request_training(args: argparse.Namespace) -> int:
    """POST /train to the running service with the service token; print its answer."""
    import httpx

    settings = load_settings()
    if settings.service_token is None:
        raise ValueError(f"{ServiceSettings.env_name('service_token')} is required")
    url = args.url or f"http://{settings.http_host}:{settings.http_port}"
    body = {"site": args.site, "asset": args.asset, "start": args.start, "end": args.end}
    try:
        response = httpx.post(
            url.rstrip("/") + "/train",
            json=body,
            headers={"Authorization": f"Bearer {settings.service_token.get_secret_value()}"},
            timeout=180,
        )
    except httpx.HTTPError as exc:
        raise OSError(f"service at {url} unreachable: {exc}") from exc
    sys.stdout.write(response.text.strip() + "\n")
    return 0 if response.status_code == 200 else 1


def run_service() -> int:
    """Run the detector service from environment settings until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # Imported here so that offline commands need not import the service.
    from analytics.service import DetectorService

    with DetectorService(load_settings()) as service:
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
        return _dispatch(args)
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    # The model's modules (scikit-learn, numpy) are imported by the commands that use them:
    # `config show`, `--help` and `train` took 3 s of CPU when the CLI imported them all.
    if args.command == "replay":
        from analytics.data import read_sensor_csv
        from analytics.replay import replay, write_decisions

        table = read_sensor_csv(args.input, time_col=args.time_col, strict=args.strict)
        result = replay(table, args.train_rows, show_progress=True)
        write_decisions(args.out, table, result)
        logger.info("wrote %s (%d alarm rows)", args.out, int(result.alarm.sum()))
    elif args.command == "evaluate":
        from analytics.benchmark import format_table, run_all

        folds = run_all(args.root)
        if args.json:
            text = json.dumps([r.as_dict() for r in folds], indent=2)
        else:
            text = format_table(folds)
        sys.stdout.write(text + "\n")
    elif args.command == "evaluate-sims":
        from analytics.evaluate import evaluate_sims, format_fault_report

        results, healthy = evaluate_sims(args.data, args.truth, args.train_days * 86400.0)
        sys.stdout.write(format_fault_report(results, healthy) + "\n")
    elif args.command == "run":
        return run_service()
    elif args.command == "train":
        return request_training(args)
    elif args.command == "config":
        sys.stdout.write(render(load_settings(), as_json=args.json) + "\n")
    return 0
