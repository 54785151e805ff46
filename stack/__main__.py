"""``python -m stack``: run the whole equipmon stack locally (see ``--help``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stack.first_run import parse_duration_s
from stack.supervisor import StackOptions, run


def main(argv: list[str] | None = None) -> int:
    """Parse options and run until interrupted."""
    defaults = StackOptions()
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    parser.add_argument("--mqtt-port", type=int, default=defaults.mqtt_port)
    parser.add_argument("--influx-port", type=int, default=defaults.influx_port)
    parser.add_argument("--api-port", type=int, default=defaults.api_port)
    parser.add_argument(
        "--collector-http-port",
        type=int,
        default=defaults.collector_http_port,
        help="the collector's /healthz and /metrics",
    )
    parser.add_argument(
        "--analytics-http-port",
        type=int,
        default=defaults.analytics_http_port,
        help="the analytics service's /healthz and /metrics",
    )
    parser.add_argument(
        "--opcua-port", type=int, default=defaults.opcua_port, help="the simulated OPC UA PLC"
    )
    parser.add_argument("--no-sims", action="store_true", help="real gateways only")
    parser.add_argument("--mqtt-url", help="use this broker instead of a local Mosquitto")
    parser.add_argument("--influx-url", help="use this InfluxDB instead of a local influxd")
    parser.add_argument("--database-url", help="SQL database (default: SQLite in the data dir)")
    parser.add_argument(
        "--history",
        type=parse_duration_s,
        default=defaults.history_s,
        help="healthy history backfilled for the demo fleet on a first start (fresh data "
        "folder), e.g. 6h or 1d; 0 = none (default 6h)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Not a line per request (seeding, asking analytics whether it scores yet).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return run(
        StackOptions(
            data_dir=args.data_dir,
            mqtt_port=args.mqtt_port,
            influx_port=args.influx_port,
            api_port=args.api_port,
            collector_http_port=args.collector_http_port,
            analytics_http_port=args.analytics_http_port,
            opcua_port=args.opcua_port,
            simulators=not args.no_sims,
            external_mqtt=args.mqtt_url,
            external_influx=args.influx_url,
            database_url=args.database_url,
            history_s=args.history,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
