"""A local SMTP sink (aiosmtpd) that keeps every message it accepts as a file in a folder.

The demo stack runs it so notification e-mail has somewhere to go; tests run it as a real
server process they can stop and start. `python -m stack.smtp_sink --port N --maildir DIR`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from stack.process import ManagedProcess, free_port, port_open


class SmtpSink(ManagedProcess):
    """The sink as a child process on a fixed port (kept across restarts)."""

    name = "smtp-sink"

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(data_dir / "smtp-sink.log")
        self.host = host
        self.port = port or free_port(host)
        self.maildir = data_dir / "mail"

    def command(self) -> Sequence[str]:
        return [
            sys.executable, "-m", "stack.smtp_sink",
            "--host", self.host, "--port", str(self.port), "--maildir", str(self.maildir),
        ]  # fmt: skip

    def is_ready(self) -> bool:
        return port_open(self.host, self.port)

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first (with X-Envelope-To added)."""
        return read_maildir(self.maildir)


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """The messages a sink kept in maildir, oldest first."""
    if not maildir.is_dir():
        return []
    found = []
    for path in sorted(maildir.glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        found.append(mail)
    return found


class _Keeper:
    """aiosmtpd handler: write each message atomically as <time>-<n>.eml."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.counter = itertools.count()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        head = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns()}-{next(self.counter):06d}.eml"
        tmp = self.maildir / f".{name}.tmp"
        tmp.write_bytes(head + envelope.original_content)
        os.replace(tmp, self.maildir / name)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keeper(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"smtp sink on {args.host}:{args.port}, keeping mail in {args.maildir}", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
