"""Command line: ``python -m collector [run] [--config FILE]``, ``leave``, ``dead-letters`` and
``config show``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from pydantic import ValidationError
from pydantic_settings import SettingsError

from collector.errors import CollectorError
from collector.leave import leave
from collector.service import CollectorService
from collector.settings import CollectorSettings, load_settings, read_config_file
from collector.spool import Spool
from telemetry.settings import explain
from telemetry.settings_show import add_config_command, epilog, render

log = logging.getLogger("collector")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m collector",
        description=__doc__,
        epilog=epilog(CollectorSettings, "python -m collector"),
    )
    parser.add_argument("--config", type=Path, help="YAML or TOML config file")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="collect MQTT telemetry into InfluxDB (default)")
    run.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    leave_cmd = sub.add_parser(
        "leave",
        help="leave the shared group for good: take over the stopped replica's queued share, "
        "end its session, drain its spool (scaling down)",
    )
    leave_cmd.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    leave_cmd.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to drain the spool at most"
    )
    dead = sub.add_parser("dead-letters", help="print the newest dead letters as JSON lines")
    dead.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    dead.add_argument("--limit", type=int, default=20, help="how many (newest first)")
    dead.add_argument("--payload-bytes", type=int, default=200, help="payload bytes to show")
    show = add_config_command(sub)
    show.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    return parser


# The network thread keeps the GIL busy; the committer and the writer release it around every
# SQLite step and socket call and must win it back each time. With the default 5 ms switch
# interval a group commit waited ~40 ms for the GIL on a loaded machine (and the broker's window
# waits on the commit); 1 ms measured +60 % messages/s (docs/collector.md, "Where the time goes").
_SWITCH_INTERVAL_S = 0.001


_REFUSED_FLUSH_S = 2.0


def run(settings: CollectorSettings) -> int:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    service = CollectorService(settings)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    service.start()
    while not stop.wait(1.0):
        if service.source.refused:
            log.error("the broker refused us for good (%s): exiting", service.source.refused)
            # Briefly: a process taken over must be gone within seconds (what it spooled
            # stays for the next start under this identity).
            service.stop(flush_s=min(settings.shutdown_flush_s, _REFUSED_FLUSH_S))
            return 3
    service.stop()
    return 0


def _is_text(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def dead_letters(settings: CollectorSettings, limit: int, payload_bytes: int) -> int:
    """Print the newest dead letters, one JSON object per line."""
    # Only reads: a spool on a read-only or full disk can still be inspected.
    spool = Spool(settings.spool_path, synchronous=settings.spool.synchronous, check_writable=False)
    try:
        totals = {k.split(":", 1)[1]: v for k, v in spool.totals().items() if k.startswith("dead")}
        print(json.dumps({"dead_letters_by_reason": totals}))
        for letter in spool.dead_letters(limit):
            shown = letter.payload[:payload_bytes]
            # Binary input (a Modbus answer with a bad CRC, serial noise) is shown in hex too.
            binary = {"payload_hex": shown.hex(" ")} if not _is_text(shown) else {}
            print(
                json.dumps(
                    {
                        "id": letter.id,
                        "received": datetime.fromtimestamp(
                            letter.received_ns / 1e9, UTC
                        ).isoformat(),
                        "reason": letter.reason,
                        "detail": letter.detail,
                        "topic": letter.topic,
                        "payload_size": letter.payload_size,
                        "payload": shown.decode("utf-8", "replace"),
                        **binary,
                    }
                )
            )
    finally:
        spool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (ValidationError, CollectorError, SettingsError) as exc:
        if isinstance(exc, ValidationError):
            message = explain(CollectorSettings, exc)  # each problem names its variable
        else:
            message = f"invalid configuration: {exc}"
        print(f"collector: {message}", file=sys.stderr)
        return 2
    if args.command == "config":
        values = read_config_file(args.config) if args.config else {}
        print(render(settings, as_json=args.json, file_values=values, file_name=str(args.config)))
        return 0
    logging.basicConfig(
        level=settings.log.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "dead-letters":
            return dead_letters(settings, args.limit, args.payload_bytes)
        if args.command == "leave":
            return leave(settings, drain_timeout_s=args.drain_timeout)
        return run(settings)
    except CollectorError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
