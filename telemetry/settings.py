"""The house's settings namespace: each service reads ``EQUIPMON_<SERVICE>__<PATH>``.

Every service's settings class derives from ``EquipmonSettings`` and names its service
(``env_service = "collector"``). A setting's variable is ``EQUIPMON_``, the service, then its
field path, upper case, joined by ``__``: ``EQUIPMON_COLLECTOR__MQTT__URL``,
``EQUIPMON_ANALYTICS__TICK_S``, ``EQUIPMON_API__SERVER__PORT`` (a field may rename its part of
the name with ``EnvName``, and list conventional names read after its own, e.g. ``DATABASE_URL``).

Sources, highest first: keyword arguments; the environment (the setting's own name, then its
conventional names, then, for one release, the name it had before the namespace, which warns);
a config file (``build(..., file_values=...)``); the defaults. Lists and mappings are JSON.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

log = logging.getLogger(__name__)

ROOT = "EQUIPMON_"
DELIMITER = "__"
# The names before the namespace: EQUIPMON_<PATH>, shared by every service (removed after the
# next release).
LEGACY_PREFIX = "EQUIPMON_"
DOCS = "docs/configuration.md"

SourceKind = Literal["default", "file", "env", "deprecated"]


@dataclass(frozen=True)
class EnvName:
    """Annotated metadata: how a field is named in the environment, where not by its name."""

    segment: str | None = None  # this field's part of the variable name (default: field name)
    also: tuple[str, ...] = ()  # conventional full names read after its own (not deprecated)


@dataclass(frozen=True)
class Leaf:
    """One setting: its field path, its field, its variable and the names it is also read from."""

    path: tuple[str, ...]
    field: FieldInfo
    name: str
    also: tuple[str, ...]
    legacy: str

    @property
    def dotted(self) -> str:
        """The setting as written in a config file or a message: ``mqtt.url``."""
        return ".".join(self.path)


@dataclass(frozen=True)
class Origin:
    """Where a setting's effective value came from."""

    kind: SourceKind
    name: str = ""  # the variable (env, deprecated) or file (file) that gave it


def _env_name(info: FieldInfo) -> EnvName:
    for item in info.metadata:
        if isinstance(item, EnvName):
            return item
    return EnvName()


def _section(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _walk(model: type[BaseModel], path: tuple[str, ...], name: str, legacy: str) -> Iterator[Leaf]:
    for field_name, info in model.model_fields.items():
        env = _env_name(info)
        segment = (env.segment or field_name).upper()
        here = (*path, field_name)
        section = _section(info)
        if section is not None:
            yield from _walk(
                section,
                here,
                f"{name}{segment}{DELIMITER}",
                f"{legacy}{field_name.upper()}{DELIMITER}",
            )
        else:
            yield Leaf(here, info, f"{name}{segment}", env.also, f"{legacy}{field_name.upper()}")


@functools.cache
def leaves(cls: type[EquipmonSettings]) -> tuple[Leaf, ...]:
    """Every setting of a service, in field order, with its names."""
    return tuple(_walk(cls, (), cls.env_prefix(), LEGACY_PREFIX))


def _nested_get(values: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _nested_set(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        values = values.setdefault(part, {})
    values[path[-1]] = value


@dataclass(frozen=True)
class EnvReading:
    """What the environment says about one service: raw values, their origins, warnings."""

    raw: dict[tuple[str, ...], tuple[Leaf, str]]
    origins: dict[tuple[str, ...], Origin]
    notes: list[str]


def read_environment(
    cls: type[EquipmonSettings], environ: Mapping[str, str] | None = None
) -> EnvReading:
    """The service's variables found in the environment (names match in any case)."""
    env = {
        key.upper(): value for key, value in (os.environ if environ is None else environ).items()
    }
    raw: dict[tuple[str, ...], tuple[Leaf, str]] = {}
    origins: dict[tuple[str, ...], Origin] = {}
    notes: list[str] = []
    for leaf in leaves(cls):
        current = [n for n in (leaf.name, *leaf.also) if n in env]
        if current:
            raw[leaf.path] = (leaf, env[current[0]])
            origins[leaf.path] = Origin("env", current[0])
            if leaf.legacy in env:
                notes.append(
                    f"{leaf.legacy} is deprecated and ignored: {current[0]} is set too and wins "
                    f"(remove {leaf.legacy}; see {DOCS})"
                )
        elif leaf.legacy in env:
            raw[leaf.path] = (leaf, env[leaf.legacy])
            origins[leaf.path] = Origin("deprecated", leaf.legacy)
            notes.append(
                f"{leaf.legacy} is deprecated: rename it to {leaf.name} (the old name is read "
                f"until the next release; see {DOCS})"
            )
    return EnvReading(raw, origins, notes)


class NamespacedEnvSource(PydanticBaseSettingsSource):
    """The environment under the service's names (and, with a warning, the old ones)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every setting at once

    def __call__(self) -> dict[str, Any]:
        cls = self.settings_cls
        assert issubclass(cls, EquipmonSettings)
        reading = read_environment(cls)
        for note in reading.notes:
            # Python hides DeprecationWarning outside __main__ by default: the log line is the
            # one operators see, the warning the one tests and embedding programs can catch.
            warnings.warn(note, DeprecationWarning, stacklevel=2)
            log.warning("%s", note)
        values: dict[str, Any] = {}
        for path, (leaf, text) in reading.raw.items():
            variable = reading.origins[path].name
            try:
                value = self.prepare_field_value(path[-1], leaf.field, text, False)
            except ValueError as exc:
                raise SettingsError(
                    f"{variable} must be JSON (setting {leaf.dotted}): {exc}"
                ) from exc
            _nested_set(values, path, value)
        return values


# The config file's values (and its name) for the settings being built, set only by build().
_FILE: ContextVar[tuple[str, Mapping[str, Any]] | None] = ContextVar("_FILE", default=None)


class FileSource(PydanticBaseSettingsSource):
    """The values of a config file (below the environment)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        current = _FILE.get()
        values = current[1] if current else {}
        return values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        current = _FILE.get()
        return dict(current[1]) if current else {}


class EquipmonSettings(BaseSettings):
    """Base of each service's settings: the service's namespace in the environment."""

    env_service: ClassVar[str] = ""

    model_config = SettingsConfigDict(extra="ignore")

    @classmethod
    def env_prefix(cls) -> str:
        """``EQUIPMON_<SERVICE>__``."""
        return f"{ROOT}{cls.env_service.upper()}{DELIMITER}"

    @classmethod
    def env_name(cls, dotted: str) -> str:
        """The variable of a setting given by its path (``spool.path``)."""
        for leaf in leaves(cls):
            if leaf.dotted == dotted:
                return leaf.name
        raise KeyError(f"{cls.env_service} has no setting {dotted}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, NamespacedEnvSource(settings_cls), FileSource(settings_cls))


S = TypeVar("S", bound=EquipmonSettings)


def build(
    cls: type[S],
    file_values: Mapping[str, Any] | None = None,
    file_name: str = "",
    **overrides: Any,
) -> S:
    """Settings from overrides, the environment, a config file's values and the defaults."""
    token = _FILE.set((file_name, file_values) if file_values else None)
    try:
        return cls(**overrides)
    finally:
        _FILE.reset(token)


def origins(
    cls: type[EquipmonSettings],
    file_values: Mapping[str, Any] | None = None,
    file_name: str = "",
    environ: Mapping[str, str] | None = None,
) -> dict[tuple[str, ...], Origin]:
    """Where each setting's value comes from (for ``config show``)."""
    found = read_environment(cls, environ).origins
    result: dict[tuple[str, ...], Origin] = {}
    for leaf in leaves(cls):
        if leaf.path in found:
            result[leaf.path] = found[leaf.path]
        elif file_values and _nested_get(file_values, leaf.path)[0]:
            result[leaf.path] = Origin("file", file_name)
        else:
            result[leaf.path] = Origin("default")
    return result


def explain(cls: type[EquipmonSettings], exc: Exception) -> str:
    """A settings error as one line per problem, each naming the setting and its variable.

    Input values are left out: the one rejected may be a secret (a token too short).
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    names = {leaf.path: leaf.name for leaf in leaves(cls)}
    lines = [f"invalid {cls.env_service} settings ({DOCS}):"]
    for error in errors():
        path = tuple(str(part) for part in error.get("loc", ()))
        variable = next((names[path[:n]] for n in range(len(path), 0, -1) if path[:n] in names), "")
        where = ".".join(path) or "settings"
        lines.append(f"  {where}" + (f" ({variable})" if variable else "") + f": {error['msg']}")
    return "\n".join(lines)
