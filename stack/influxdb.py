"""A local InfluxDB 1.x (influxd) with a project-local config and data folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from stack.process import ManagedProcess, free_port, require_binary

# Reporting and the internal monitor are off (no network, no _internal database growing in tests);
# continuous queries are off because equipmon downsamples at query time; the in-memory index
# starts fastest for small test databases.
CONFIG = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{data_dir}/meta"

[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  query-log-enabled = false
  index-version = "inmem"
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{port}"
  auth-enabled = {auth}
  log-enabled = false
  write-tracing = false
  max-body-size = 0
  max-row-limit = 0

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
"""


class InfluxDBServer(ManagedProcess):
    """influxd on free ports; ``auth=True`` enables HTTP authentication."""

    name = "influxd"

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        auth: bool = False,
    ) -> None:
        super().__init__(data_dir / "influxd.log")
        self.binary = require_binary("influxd", "influxdb")
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.rpc_port = free_port(host)
        self.auth = auth
        self.config_path = data_dir / "influxdb.conf"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            CONFIG.format(
                data_dir=self.data_dir,
                host=self.host,
                port=self.port,
                rpc_port=self.rpc_port,
                auth="true" if self.auth else "false",
            )
        )

    def command(self) -> Sequence[str]:
        return [self.binary, "-config", str(self.config_path)]

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False
