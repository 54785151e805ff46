"""A supervised child process with readiness checks: start, stop (SIGTERM), kill (SIGKILL)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_binary(name: str, package: str) -> str:
    """The full path of a system binary, or a ServiceError that says how to install it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise ServiceError(
            f"'{name}' was not found: install it with 'apt-get install {package}' "
            "(scripts/test and scripts/run do this on Debian)"
        )
    return path


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is true or raise ServiceError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class ManagedProcess:
    """One child process. Subclasses give the command line and the readiness probe."""

    name = "process"
    start_timeout = 30.0

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The child's environment (default: inherit ours)."""
        return None

    def prepare(self) -> None:
        """Write config files before each start (default: nothing)."""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the process and block until it is ready (or raise with its log's tail)."""
        if self.is_running():
            return
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        argv = list(self.command())
        log.info("starting %s: %s", self.name, " ".join(argv))
        # A new session keeps Ctrl-C in a terminal from reaching the child before we stop it.
        self._proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.environment(),
        )
        deadline = time.monotonic() + self.start_timeout
        while not self.is_ready():
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self._proc.returncode} during start-up:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(
                    f"{self.name} not ready after {self.start_timeout:.0f} s:\n" + self.log_tail()
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): nothing is flushed, as in a power cut or OOM kill."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
