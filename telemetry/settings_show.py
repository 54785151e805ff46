"""``config show``: a service's effective settings, each with its source, secrets masked."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from telemetry.settings import DOCS, EquipmonSettings, Leaf, Origin, leaves, origins

MASK = "********"
# A name with one of these words holds a secret; one ending in _file names the file that holds
# it (a path, shown so that a wrong path can be seen).
_SECRET_WORDS = frozenset({"token", "password", "passwd", "secret", "key", "credentials"})


def is_secret_name(name: str) -> bool:
    """Whether a setting's (or a nested key's) name says it holds a secret."""
    words = re.split(r"[_\W]+", name.lower())
    return not name.lower().endswith("_file") and bool(_SECRET_WORDS.intersection(words))


def _annotation_is_secret(leaf: Leaf) -> bool:
    annotation = leaf.field.annotation
    args = getattr(annotation, "__args__", ())
    return annotation is SecretStr or SecretStr in args


def _mask_url(text: str) -> str:
    """A URL with its password (``postgresql://user:pw@host/db``) masked."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _mask(name: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    if is_secret_name(name):
        return MASK
    if isinstance(value, Mapping):
        return {key: _mask(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(name, item) for item in value]
    if isinstance(value, str):
        return _mask_url(value)
    return value


def _value(dumped: Mapping[str, Any], leaf: Leaf) -> Any:
    current: Any = dumped
    for part in leaf.path:
        current = current[part]
    if _annotation_is_secret(leaf) and current is not None:
        return MASK
    return _mask(leaf.path[-1], current)


def rows(
    settings: EquipmonSettings,
    file_values: Mapping[str, Any] | None = None,
    file_name: str = "",
    environ: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per setting: setting, variable, value (masked), source and where from."""
    cls = type(settings)
    found: dict[tuple[str, ...], Origin] = origins(cls, file_values, file_name, environ)
    dumped = settings.model_dump(mode="json")
    result = []
    for leaf in leaves(cls):
        origin = found[leaf.path]
        result.append(
            {
                "setting": leaf.dotted,
                "variable": leaf.name,
                "value": _value(dumped, leaf),
                "source": origin.kind,
                "from": origin.name or None,
            }
        )
    return result


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value)


def _source_text(row: Mapping[str, Any]) -> str:
    kind = row["source"]
    if kind == "default":
        return "default"
    if kind == "file":
        return f"file {row['from']}"
    if kind == "deprecated":
        return f"deprecated {row['from']} (rename to {row['variable']})"
    return "env" if row["from"] == row["variable"] else f"env {row['from']}"


def render(
    settings: EquipmonSettings,
    *,
    as_json: bool = False,
    file_values: Mapping[str, Any] | None = None,
    file_name: str = "",
    environ: Mapping[str, str] | None = None,
) -> str:
    """The ``config show`` output: an aligned table, or JSON with ``as_json``."""
    table = rows(settings, file_values, file_name, environ)
    service = type(settings).env_service
    if as_json:
        return json.dumps({"service": service, "settings": table}, indent=2)
    width = max(len(row["variable"]) for row in table)
    value_width = min(40, max(len(_text(row["value"])) for row in table))
    lines = [
        f"# {service}: effective settings (variables {type(settings).env_prefix()}<SECTION>__"
        f"<OPTION>; a config file takes the setting's path); their meaning: {DOCS}",
        f"{'variable':<{width}}  {'value':<{value_width}}  source",
    ]
    for row in table:
        lines.append(
            f"{row['variable']:<{width}}  {_text(row['value']):<{value_width}}  {_source_text(row)}"
        )
    return "\n".join(lines)


def epilog(cls: type[EquipmonSettings], command: str) -> str:
    """The ``--help`` footer that says where the settings are."""
    return (
        f"settings: environment variables {cls.env_prefix()}<SECTION>__<OPTION>, all listed in "
        f"{DOCS}; '{command} config show [--json]' prints the effective ones and where each "
        "comes from (secrets masked)"
    )


def add_config_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The ``config show [--json]`` subcommand (``args.command == "config"``); returns show's."""
    config = sub.add_parser(
        "config",
        help=f"config show: the effective settings, each with its source ({DOCS})",
        description=f"Inspect the settings; every one is described in {DOCS}.",
    )
    actions = config.add_subparsers(dest="config_command", required=True)
    show = actions.add_parser(
        "show",
        help="print every setting, its value (secrets masked) and its source: default, file, "
        "environment variable or deprecated name",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return show
