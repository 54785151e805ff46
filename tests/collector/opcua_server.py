"""The simulated OPC UA controller (``python -m device_sims opcua``) as a managed test process."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.process import ManagedProcess


class OpcUaServerProcess(ManagedProcess):
    """A real asyncua server process on ``port``; ready once it accepts TCP connections."""

    name = "opcua-server"

    def __init__(self, log_path: Path, port: int, *args: str, password: str = "") -> None:
        super().__init__(log_path)
        self.port = port
        self.args = args
        self.password = password

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/equipmon/"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "device_sims", "opcua", "--port", str(self.port), *self.args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "EQUIPMON_SIM_OPCUA_PASSWORD": self.password}

    def is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False
