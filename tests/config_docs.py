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
from telemetry.settings import EquipmonSettings, leaves

SERVICES: tuple[tuple[str, str, type[EquipmonSettings]], ...] = (
    ("collector", "`python -m collector [--config FILE] run`", CollectorSettings),
    ("analytics", "`python -m analytics run`", ServiceSettings),
    ("api", "`python -m api`", ApiSettings),
)
HEADER = """\
# Configuration

Each service reads its settings from its own part of the environment:
`EQUIPMON_<SERVICE>__<SECTION>__<OPTION>` (upper case, `__` between the service, a section and
its option), e.g. `EQUIPMON_COLLECTOR__MQTT__URL`, `EQUIPMON_ANALYTICS__API__URL`,
`EQUIPMON_API__SERVER__PORT` (the API's `api` section is `SERVER` in the environment, so the
service's name is not repeated). These are the names docker-compose.yml and the local run
(`python -m stack`) use. Settings two services share, such as InfluxDB's URL, are given to each
under its own name. Lists and mappings are JSON (`EQUIPMON_COLLECTOR__SERIAL='[...]'`).

Precedence, highest first: the setting's own variable; a conventional name it also reads (the
API's `DATABASE_URL`); its name before the namespace (deprecated, see
[Renamed settings](#renamed-settings)); the collector's config file (`--config FILE`, YAML or
TOML, keys are the settings' paths such as `mqtt.url`); the default.

`python -m collector config show`, `python -m analytics config show` and
`python -m api config show` print every effective setting with its source (default, file,
environment variable, deprecated name), secrets masked; `--json` prints JSON. Secrets are never
logged. Variables of the test runner (`EQUIPMON_TEST_*`, `EQUIPMON_BROWSER_TESTS`) and of the
simulators (`EQUIPMON_SIM_MQTT_AUTH`) are no service's settings and keep their names.

This page is generated from the settings classes
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


def _rows(model: type[EquipmonSettings]) -> list[str]:
    rows = []
    for leaf in leaves(model):
        env = " or ".join(f"`{name}`" for name in (leaf.name, *leaf.also))
        description = " ".join((leaf.field.description or "").split()).replace("|", "\\|")
        rows.append(f"| {env} | {_default(leaf.field)} | {description} |")
    return rows


def _renamed() -> list[str]:
    parts = [
        "\n## Renamed settings\n\n"
        "Before the namespace every service read `EQUIPMON_<SECTION>__<OPTION>` (so one name could "
        "set two services). Those names still work for this release: each one read logs a "
        "warning (and raises a `DeprecationWarning`) naming its new variable, and where the new "
        "one is set too the new one wins and the warning says so. They are removed after the "
        "next release.\n",
        "| old name | new name | service |\n|---|---|---|",
    ]
    for name, _, model in SERVICES:
        parts.extend(f"| `{leaf.legacy}` | `{leaf.name}` | {name} |" for leaf in leaves(model))
    return parts


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    for name, command, model in SERVICES:
        doc = " ".join((model.__doc__ or "").split())
        parts.append(f"\n## {name}\n\n{command}. {doc}\n")
        parts.append("| variable | default | meaning |\n|---|---|---|")
        parts.extend(_rows(model))
    parts.append(
        "\n## device_sims and the local stack\n\n"
        "`python -m device_sims run SCENARIO --help` and `python -m stack --help` list their "
        "options; the simulators also read `EQUIPMON_SIM_MQTT_AUTH` "
        "(`SITE=USER:PASSWORD,...`, one broker login per site).\n"
    )
    parts.extend(_renamed())
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
