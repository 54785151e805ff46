"""A local Mosquitto broker with a project-local config, data folder and log."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path

from stack.process import ManagedProcess, free_port, port_open, require_binary

# Why each setting: Mosquitto's default max_queued_messages (1000) silently discards QoS 1
# messages for an offline or slow persistent client while the publisher got its PUBACK; 0 lifts
# the limit (memory is the bound). Persistence keeps sessions and queues across a graceful
# restart; queue_qos0_messages keeps QoS 0 messages for an offline persistent session too
# (Sparkplug data is QoS 0 by the specification: what was in flight when the collector died
# waits for it); a short autosave interval narrows what a SIGKILLed broker loses. 'user' keeps the
# broker as the invoking user: run as root it would otherwise drop to 'mosquitto' and could not
# write the project-local data folder.
BASE_CONFIG = """\
per_listener_settings false
persistence true
persistence_location {data_dir}/
autosave_interval 5
max_queued_messages 0
max_queued_bytes 0
queue_qos0_messages true
max_inflight_messages 100
max_packet_size 16777216
persistent_client_expiration 7d
log_dest file {log_path}
log_type error
log_type warning
log_type notice
connection_messages false
listener {port} {host}
user {user}
"""


class MosquittoServer(ManagedProcess):
    """Mosquitto on a free port; ``password_file``/``acl_file`` turn anonymous access off."""

    name = "mosquitto"

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        super().__init__(data_dir / "mosquitto.log")
        self.binary = require_binary("mosquitto", "mosquitto")
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.password_file = password_file
        self.acl_file = acl_file
        self.config_path = data_dir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = BASE_CONFIG.format(
            data_dir=self.data_dir,
            log_path=self.data_dir / "broker.log",
            port=self.port,
            host=self.host,
            user=getpass.getuser(),
        )
        if self.password_file:
            config += f"allow_anonymous false\npassword_file {self.password_file}\n"
        else:
            config += "allow_anonymous true\n"
        if self.acl_file:
            config += f"acl_file {self.acl_file}\n"
        self.config_path.write_text(config)

    def command(self) -> Sequence[str]:
        return [self.binary, "-c", str(self.config_path)]

    def is_ready(self) -> bool:
        return port_open(self.host, self.port)
