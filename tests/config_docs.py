"""docs/configuration.md, generated from the services' settings classes so it cannot go stale.

``python -m tests.config_docs > docs/configuration.md`` writes it; tests/test_configuration_docs.py
fails when the file differs from what the settings say.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from analytics.settings import ServiceSettings
from api.settings import Settings as ApiSettings
from collector.settings import CollectorSettings

SERVICES: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("collector", "`python -m collector [--config FILE] run`", CollectorSettings),
    ("analytics", "`python -m analytics run`", ServiceSettings),
    ("api", "`python -m api`", ApiSettings),
)
HEADER = """\
# Configuration

Every service reads its settings from the environment: `EQUIPMON_<SECTION>__<OPTION>` (upper
case, `__` between a section and its option), the names docker-compose.yml and the local run
(`python -m stack`) use. The collector also reads a YAML file (`--config`; the environment wins).
Secrets are never logged. This page is generated from the settings classes
(`python -m tests.config_docs > docs/configuration.md`); a test fails when it is out of date.
"""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        try:
            value: Any = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section)"
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if value is None or value == "":
        return "—"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return f"`{value}`"


def _rows(model: type[BaseModel], path: list[str]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, [*path, name]))
            continue
        env = "EQUIPMON_" + "__".join([*path, name]).upper()
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            env = " or ".join(f"{c}" for c in choices if isinstance(c, str) and c.isupper())
        description = " ".join((info.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{env}` | {_default(info)} | {description} |")
    return rows


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    for name, command, model in SERVICES:
        doc = " ".join((model.__doc__ or "").split())
        parts.append(f"\n## {name}\n\n{command}. {doc}\n")
        parts.append("| variable | default | meaning |\n|---|---|---|")
        parts.extend(_rows(model, []))
    parts.append(
        "\n## device_sims and the local stack\n\n"
        "`python -m device_sims run SCENARIO --help` and `python -m stack --help` list their "
        "options; the simulators also read `EQUIPMON_SIM_MQTT_AUTH` "
        "(`SITE=USER:PASSWORD,...`, one broker login per site).\n"
    )
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
