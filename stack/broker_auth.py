"""The local broker's security model: the same per-gateway users and ACL as docker-compose.

The ACL file is deploy/mosquitto/acl, shared with the compose broker so both run the same
rules: the collector reads everything under the prefix (telemetry, and what it dead-letters as
an unknown topic), and each gateway user (``gw-<site>-<n>``) may publish only under its own
site. Passwords are random, made once per data folder and kept in
``mqtt-users.json`` beside the broker's data; Mosquitto gets them hashed through
``mosquitto_passwd``.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack.process import require_binary

ROOT = Path(__file__).resolve().parents[1]
ACL_FILE = ROOT / "deploy" / "mosquitto" / "acl"
COLLECTOR_USER = "collector"
# "topic write equipmon/<site>/#": the site a gateway user may publish for.
_SITE_WRITE = re.compile(r"^topic\s+write\s+[^/\s]+/([^/\s#+]+)/#\s*$")


@dataclass(frozen=True)
class BrokerUsers:
    """Every broker user's password, and which site each gateway user publishes for."""

    passwords: dict[str, str]
    gateway_sites: dict[str, str]  # gateway user → site

    @property
    def collector_password(self) -> str:
        return self.passwords[COLLECTOR_USER]

    def sim_auth(self) -> str:
        """``EQUIPMON_SIM_MQTT_AUTH`` for device_sims: one gateway login per site."""
        by_site: dict[str, str] = {}
        for user, site in sorted(self.gateway_sites.items()):
            by_site.setdefault(site, user)
        return ",".join(f"{site}={user}:{self.passwords[user]}" for site, user in by_site.items())


def acl_users(acl_file: Path = ACL_FILE) -> tuple[list[str], dict[str, str]]:
    """(every user the ACL names, gateway user → its site)."""
    users: list[str] = []
    sites: dict[str, str] = {}
    current: str | None = None
    for line in acl_file.read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "user":
            current = words[1]
            users.append(current)
        elif current is not None and (match := _SITE_WRITE.match(line.strip())):
            sites[current] = match.group(1)
    return users, sites


def broker_users(data_dir: Path, acl_file: Path = ACL_FILE) -> BrokerUsers:
    """The users of ``acl_file`` with passwords kept in ``data_dir/mqtt-users.json``."""
    users, sites = acl_users(acl_file)
    path = data_dir / "mqtt-users.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    passwords = {user: known.get(user) or secrets.token_urlsafe(18) for user in users}
    if passwords != known:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(passwords, indent=2) + "\n")
    return BrokerUsers(passwords, sites)


def write_password_file(users: BrokerUsers, path: Path) -> Path:
    """Mosquitto's password file (hashed by mosquitto_passwd) for ``users``."""
    tool = require_binary("mosquitto_passwd", "mosquitto")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    path.chmod(0o600)
    for user, password in users.passwords.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    return path
