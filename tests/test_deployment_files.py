"""docker-compose.yml, .env.example and the shipped Mosquitto config stay consistent (no engine
runs here, so these checks are what keeps the compose file honest)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

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
        "collector",
        "analytics",
        "device_sims",
    } <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            assert (ROOT / command[2]).is_dir(), f"{name} runs a package that does not exist"
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
