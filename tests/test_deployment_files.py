"""docker-compose.yml, .env.example and the shipped Mosquitto config stay consistent (no engine
runs here, so these checks are what keeps the compose file honest)."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from analytics.settings import ServiceSettings
from api.settings import Settings as ApiSettings
from collector.settings import CollectorSettings
from telemetry.settings import EquipmonSettings, leaves

ROOT = Path(__file__).resolve().parents[1]


def test_every_compose_variable_is_documented_in_env_example() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)(?::-[^}]*)?\}", compose))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used, "the compose file should take its secrets from .env"
    assert used <= documented, f"undocumented: {sorted(used - documented)}"


def test_compose_services_have_healthchecks_and_existing_entry_points() -> None:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = document["services"]
    assert {
        "mosquitto",
        "influxdb",
        "postgres",
        "api",
        "collector-1",
        "collector-2",
        "analytics",
        "device_sims",
    } <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = ROOT / command[2].replace(".", "/")
            exists = module.is_dir() or module.with_suffix(".py").is_file()
            assert exists, f"{name} runs a module that does not exist"
    assert services["influxdb"]["image"].startswith("influxdb:2.7")
    for mount in services["mosquitto"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), f"{source} is mounted but missing"


def test_shipped_mosquitto_config_loses_nothing_and_is_not_anonymous() -> None:
    config = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert re.search(r"^max_queued_messages 0$", config, re.M)
    assert re.search(r"^persistence true$", config, re.M)
    assert re.search(r"^allow_anonymous false$", config, re.M)
    assert re.search(r"^acl_file ", config, re.M)


SETTINGS: dict[str, type[EquipmonSettings]] = {
    "api": ApiSettings,
    "collector": CollectorSettings,
    "analytics": ServiceSettings,
}
# Variables of the environment that are no service's settings (docs/configuration.md).
NOT_SETTINGS = {"EQUIPMON_SIM_MQTT_AUTH"}


@pytest.mark.parametrize(
    ("service", "reader"),
    [
        ("api", "api"),
        ("collector-1", "collector"),
        ("collector-2", "collector"),
        ("analytics", "analytics"),
        ("seed", "api"),  # stack.seed reads the API's admin token
    ],
)
def test_compose_settings_of_each_service_are_settings_it_reads(service: str, reader: str) -> None:
    """A misspelt or old EQUIPMON_* name would be ignored silently: catch it here. Every name
    is a current setting of the service it names, and a service's own names are its own."""
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shared = document["x-equipmon"]["environment"]
    environment = document["services"][service]["environment"]
    known = {leaf.name for cls in SETTINGS.values() for leaf in leaves(cls)}
    unknown = [
        key
        for key in sorted(environment)
        if key.startswith("EQUIPMON_") and key not in known | NOT_SETTINGS
    ]
    assert not unknown, f"no service reads {unknown}"
    own = {leaf.name for leaf in leaves(SETTINGS[reader])}
    foreign = [
        key for key in sorted(set(environment) - set(shared)) if key not in own | NOT_SETTINGS
    ]
    assert not foreign, f"{service} does not read {foreign}"
    # The shared block gives InfluxDB to every service under that service's own names.
    for name, cls in SETTINGS.items():
        assert any(key.startswith(cls.env_prefix()) for key in shared), name


def _equipmon_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the equipmon image (the others are third-party images)."""
    return {
        name: service
        for name, service in document["services"].items()
        if service.get("image", "").startswith("equipmon")
    }


def test_every_equipmon_volume_is_created_in_the_image_and_owned_by_its_user() -> None:
    """Docker creates a named volume's mount point root-owned unless the image has it."""
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users, "the image must not run as root"
    user = users[-1]
    assert user not in ("root", "0")
    created: set[str] = set()
    owned: set[str] = set()
    for line in re.findall(r"^RUN (.*)$", dockerfile, re.M):
        for step in line.split("&&"):
            words = step.split()
            if words[:2] == ["mkdir", "-p"]:
                created.update(w.rstrip("/") for w in words[2:])
            if words[:1] == ["chown"]:
                who, paths = (words[2], words[3:]) if words[1] == "-R" else (words[1], words[2:])
                if who.split(":")[0] == user:
                    owned.update(p.rstrip("/") for p in paths)
    mounts = {
        (name, mount.split(":")[1].rstrip("/"))
        for name, service in _equipmon_services(document).items()
        for mount in service.get("volumes", [])
        if not mount.startswith(".")
    }
    assert mounts, "the collector, analytics and seed services mount volumes"
    for name, target in sorted(mounts):
        assert target in created, f"{name} mounts {target}, which the Dockerfile does not create"
        parents = [target, *(str(p) for p in Path(target).parents)]
        assert any(p in owned for p in parents), f"{target} ({name}) is not owned by {user}"


def lock_lines() -> list[str]:
    """``name==version`` for every runtime dependency of equipmon, as installed here."""
    todo: list[tuple[str, frozenset[str]]] = [("equipmon", frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    pins: dict[str, str] = {}
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in done:
            continue
        done.add(key)
        dist = metadata.distribution(name)
        if key[0] != "equipmon":
            pins[key[0]] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def test_the_image_installs_the_versions_the_tests_use() -> None:
    lock = (ROOT / "deploy/requirements.lock").read_text()
    pinned = [line for line in lock.splitlines() if line and not line.startswith("#")]
    assert pinned == lock_lines(), (
        "deploy/requirements.lock differs from the test environment: "
        ".venv/bin/python -m tests.test_deployment_files > deploy/requirements.lock"
    )
    assert "requirements.lock" in (ROOT / "Dockerfile").read_text()


if __name__ == "__main__":
    sys.stdout.write(
        "# The runtime dependencies of equipmon at the versions the tests ran with (Python 3.11,\n"
        "# Linux). Regenerate: .venv/bin/python -m tests.test_deployment_files > "
        "deploy/requirements.lock\n"
    )
    sys.stdout.write("".join(f"{line}\n" for line in lock_lines()))
