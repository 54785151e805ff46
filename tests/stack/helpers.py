"""Helpers of the run-command tests: the stack's arguments on free ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stack.process import free_port

PORT_OPTIONS = ("--mqtt-port", "--influx-port", "--api-port", "--collector-http-port",
                "--analytics-http-port", "--opcua-port")  # fmt: skip


@dataclass(frozen=True)
class StackPorts:
    """A free port for each of the stack's listeners."""

    mqtt: int
    influx: int
    api: int
    collector_http: int
    analytics_http: int
    opcua: int

    @classmethod
    def free(cls) -> StackPorts:
        return cls(*(free_port() for _ in PORT_OPTIONS))

    def args(self, data_dir: Path) -> list[str]:
        """`python -m stack` arguments: this data folder and these ports."""
        ports = (self.mqtt, self.influx, self.api, self.collector_http, self.analytics_http,
                 self.opcua)  # fmt: skip
        args = ["--data-dir", str(data_dir)]
        for option, port in zip(PORT_OPTIONS, ports, strict=True):
            args += [option, str(port)]
        return args
