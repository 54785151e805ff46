"""docker-compose.yml's services as local processes (no Docker engine runs here).

Each service gets exactly the command and environment the compose file gives it, with what a
container would have and a process does not mapped as a container runtime would map it:

- a path inside a container (a bind mount, a named volume) is a folder under one temporary
  root: ``/var/lib/equipmon/spool`` becomes ``<root>/var/lib/equipmon/spool``;
- a service's host name (``mosquitto:1883``) is 127.0.0.1 and a free port;
- each equipmon replica runs in its own UTS namespace (``unshare --uts``) with the compose
  ``hostname``, as each container has its own; they share the loopback network, so the one
  listening port they would each have to themselves (the collector's 9101) gets a free port.

The image substitution is the caller's (InfluxDB 1.6.7 for ``influxdb:2.7``).
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stack.process import ManagedProcess, port_open, require_binary

ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)(?::-([^}]*))?\}")


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as a mapping (anchors and merge keys resolved)."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def env_example() -> dict[str, str]:
    """The variables ``.env.example`` gives (what ``cp .env.example .env`` would give compose)."""
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}`` and ``${VAR:-default}``."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1)) or (m.group(2) or ""), value)


class Runtime:
    """Maps container paths and service addresses to this machine's."""

    def __init__(self, root: Path, variables: Mapping[str, str]) -> None:
        self.root = root
        self.variables = dict(variables)
        self.addresses: dict[str, str] = {}  # "mosquitto:1883" -> "127.0.0.1:40123"

    def path(self, container_path: str) -> Path:
        """Where a container path lives here."""
        return self.root / container_path.lstrip("/")

    def mount(self, service: Mapping[str, Any]) -> list[str]:
        """Create a service's volumes (bind mounts copied in); the container paths mounted."""
        targets = []
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            here = self.path(target)
            if source.startswith("."):
                here.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / source, here)
            else:
                here.mkdir(parents=True, exist_ok=True)  # a named volume, empty at first
            targets.append(target)
        return targets

    def value(self, raw: str, mounted: Sequence[str]) -> str:
        """One environment value or argument, interpolated, with addresses and paths mapped."""
        value = interpolate(raw, self.variables)
        for address, local in self.addresses.items():
            # In URLs: scheme://host:port and user:password@host:port.
            value = value.replace(f"//{address}", f"//{local}").replace(f"@{address}", f"@{local}")
        for target in mounted:
            if value == target or value.startswith(target.rstrip("/") + "/"):
                value = str(self.path(target)) + value[len(target.rstrip("/")) :]
        return value

    def environment(self, service: Mapping[str, Any]) -> dict[str, str]:
        """The service's environment, interpolated, with addresses and volume paths mapped."""
        mounted = self.mount(service)
        return {
            key: self.value(str(raw), mounted)
            for key, raw in (service.get("environment") or {}).items()
        }

    def command(self, service: Mapping[str, Any]) -> list[str]:
        """The service's command, mapped like its environment; a service host name given to a
        ``--...host`` option (``--mqtt-host mosquitto``) and that service's port after it too."""
        mounted = [v.split(":")[1] for v in service.get("volumes", [])]
        hosts = {a.split(":")[0]: a for a in self.addresses}
        out: list[str] = []
        last_host = ""
        previous = ""
        for raw in service["command"]:
            arg = self.value(str(raw), mounted)
            after_host_option = previous.startswith("--") and previous.endswith("host")
            previous = arg
            if arg in hosts and after_host_option:
                last_host = hosts[arg]
                arg = "127.0.0.1"
            elif last_host and arg == last_host.split(":")[1]:
                arg = self.addresses[last_host].split(":")[1]
            out.append(arg)
        return python_command(out)

    def rewrite_paths(self, text: str, prefix: str) -> str:
        """A config or script with the container paths under ``prefix`` mapped here."""
        return text.replace(prefix, str(self.path(prefix)) + "/")


def base_environment() -> dict[str, str]:
    """What every process inherits: a PATH with the system binaries, and nothing of ours."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": f"{path}:/usr/sbin:/sbin", "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8"}  # fmt: skip


class ComposeMosquitto(ManagedProcess):
    """The ``mosquitto`` service: its entrypoint builds the password file, then runs the conf.

    Mapped: the listener's port (a free one, on 127.0.0.1), and ``user`` (the image runs the
    broker as its own user owning its files; as root here it would drop to ``mosquitto``).
    """

    name = "mosquitto"

    def __init__(self, runtime: Runtime, service: Mapping[str, Any], port: int) -> None:
        super().__init__(runtime.root / "mosquitto.log")
        require_binary("mosquitto", "mosquitto")
        self.runtime = runtime
        self.service = service
        self.port = port

    def prepare(self) -> None:
        runtime = self.runtime
        self.env = {**base_environment(), **runtime.environment(self.service)}
        conf = runtime.path("/mosquitto/config/mosquitto.conf")
        text = runtime.rewrite_paths(conf.read_text(), "/mosquitto/")
        text = re.sub(r"^listener 1883 \S+$", f"listener {self.port} 127.0.0.1", text, flags=re.M)
        conf.write_text(text + f"user {getpass.getuser()}\n")
        entry = self.service["entrypoint"]
        script = runtime.path(entry[-1])
        script.write_text(runtime.rewrite_paths(script.read_text(), "/mosquitto/"))
        self.argv = [*entry[:-1], str(script)]

    def environment(self) -> dict[str, str]:
        return self.env

    def command(self) -> Sequence[str]:
        return self.argv

    def is_ready(self) -> bool:
        return port_open("127.0.0.1", self.port)


def in_uts_namespace(hostname: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run in a new UTS namespace whose host name is ``hostname`` (needs root).

    ``unshare`` without ``--fork`` execs, and so does the shell: the pid is the program's, so
    SIGTERM and SIGKILL reach it as they would a container's main process.
    """
    unshare = require_binary("unshare", "util-linux")
    return [unshare, "--uts", "--", "/bin/sh", "-c", 'hostname "$0" && exec "$@"', hostname,
            *argv]  # fmt: skip


def python_command(command: Sequence[str]) -> list[str]:
    """The compose ``command`` with ``python`` as this interpreter (the image's, here)."""
    return [sys.executable if command[0] == "python" else command[0], *command[1:]]


class ComposeReplica(ManagedProcess):
    """One equipmon service replica: its compose command and environment, in its own UTS
    namespace; ready once ``ready`` says so."""

    def __init__(
        self, name: str, service: Mapping[str, Any], env: Mapping[str, str], log: Path
    ) -> None:
        super().__init__(log)
        self.name = name
        # Without one, a container gets its id as host name; any valid name does here.
        self.hostname: str = service.get("hostname", name.replace("_", "-"))
        self.compose_command: list[str] = list(service["command"])
        self.argv = in_uts_namespace(self.hostname, python_command(self.compose_command))
        self.env = {**base_environment(), **env}
        self.http_port = 0
        self.ready_check: Callable[[], bool] | None = None

    def set_command(self, argv: Sequence[str]) -> None:
        """Run ``argv`` (a mapped compose command) instead."""
        self.compose_command = list(argv)
        self.argv = in_uts_namespace(self.hostname, python_command(argv))

    def run_once(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The service's command with ``args`` added, as a one-off in this replica's namespace
        (``docker compose run --rm <service> ... <args>``)."""
        return subprocess.run(
            in_uts_namespace(self.hostname, [*python_command(self.compose_command), *args]),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def environment(self) -> dict[str, str]:
        return self.env

    def command(self) -> Sequence[str]:
        return self.argv

    def is_ready(self) -> bool:
        return self.ready_check() if self.ready_check else True


class LocalPostgres(ManagedProcess):
    """The ``postgres`` service: the local PostgreSQL server, with the compose file's user,
    password and database. Run as the ``postgres`` system user (the server refuses root), in a
    folder of its own that user can enter."""

    name = "postgres"

    def __init__(self, port: int, env: Mapping[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="equipmon-compose-pg-"))
        super().__init__(self.folder / "postgres.log")
        self.port = port
        self.user, self.password, self.database = (
            env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"],
        )  # fmt: skip
        self.data = self.folder / "data"

    def prepare(self) -> None:
        if self.data.exists():
            return
        shutil.chown(self.folder, "postgres", "postgres")
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", require_binary("initdb", "postgresql"),
             "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}", "-A", "scram-sha-256"],
            check=True, capture_output=True,
        )  # fmt: skip

    def command(self) -> Sequence[str]:
        return ["runuser", "-u", "postgres", "--", require_binary("postgres", "postgresql"),
                "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder),
                "-c", "listen_addresses=127.0.0.1"]  # fmt: skip

    def is_ready(self) -> bool:
        # The port opens before the server takes sessions: a connection then fails with "the
        # database system is starting up" (seen in CI), so ready means a session opened.
        import psycopg

        if not port_open("127.0.0.1", self.port):
            return False
        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                dbname="postgres", connect_timeout=5,
            ):  # fmt: skip
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self) -> None:
        """What the image's POSTGRES_DB does at first start."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password,
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def remove(self) -> None:
        """Delete the server's folder (after ``stop``)."""
        shutil.rmtree(self.folder, ignore_errors=True)
