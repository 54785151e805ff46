"""docker-compose.yml, .env.example and the shipped Mosquitto config stay consistent (no engine
runs here, so these checks are what keeps the compose file honest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from analytics.settings import ServiceSettings
from api.settings import Settings as ApiSettings
from collector.settings import CollectorSettings

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


def _field_path_exists(model: type[BaseModel], path: list[str]) -> bool:
    name, rest = path[0], path[1:]
    fields = model.model_fields
    if name not in fields:
        return False
    if not rest:
        return True
    annotation = fields[name].annotation
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and (_field_path_exists(annotation, rest))
    )


@pytest.mark.parametrize(
    ("service", "settings"),
    [("api", ApiSettings), ("collector", CollectorSettings), ("analytics", ServiceSettings)],
)
def test_compose_settings_of_each_service_are_settings_it_reads(
    service: str, settings: type[BaseModel]
) -> None:
    """A misspelt EQUIPMON_* name would be ignored silently (extra="ignore"): catch it here."""
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shared = document["x-equipmon"]["environment"]
    own = set(document["services"][service]["environment"]) - set(shared)
    unknown = [
        key
        for key in sorted(own)
        if key.startswith("EQUIPMON_")
        and not _field_path_exists(settings, key.removeprefix("EQUIPMON_").lower().split("__"))
    ]
    assert not unknown, f"{service} does not read {unknown}"
