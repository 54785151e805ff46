"""The registry of source kinds: where each kind's settings are, and how a source is built.

A kind is a name, the settings sections it reads (one source per section) and a factory
``(section, SourceContext) -> Source``. The service builds every source through
``build_sources`` and knows none of them by name; a new protocol (Sparkplug B, OPC UA) is one
module with its settings model and a factory, and one ``SourceKind`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import ConfigError
from collector.serial.settings import AsciiPortSettings, ModbusBusSettings
from collector.settings import CollectorSettings
from collector.sources import mqtt, opcua, serial, sparkplug
from collector.sources.base import Source, SourceContext

SourceFactory = Callable[[Any, SourceContext], Source]


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One kind of input: ``sections`` picks its settings sections out of the collector's
    settings (one source each, in order); ``in_leave``: it runs during ``leave`` too (it hands
    a queue over; the others read nothing new while a replica leaves)."""

    name: str
    sections: Callable[[CollectorSettings], Sequence[Any]]
    build: SourceFactory
    in_leave: bool = False


def _mqtt(settings: CollectorSettings) -> list[Any]:
    # Always one; its client id is the replica's (settings.client_id), unless set explicitly.
    return [settings.mqtt.model_copy(update={"client_id": settings.client_id})]


def _sparkplug(settings: CollectorSettings) -> list[Any]:
    if not settings.sparkplug.enabled:
        return []
    broker = settings.mqtt.model_copy(update={"client_id": settings.client_id})
    return [sparkplug.SparkplugSection(settings.sparkplug, broker)]


def _opcua(settings: CollectorSettings) -> list[Any]:
    data_dir = Path(settings.data_dir) / "collector"
    return [opcua.OpcUaSection(server, data_dir) for server in settings.opcua]


KINDS: tuple[SourceKind, ...] = (
    SourceKind("mqtt", _mqtt, mqtt.build, in_leave=True),
    SourceKind(
        "ascii",
        lambda s: [p for p in s.serial if isinstance(p, AsciiPortSettings)],
        serial.build_ascii,
    ),
    SourceKind(
        "modbus",
        lambda s: [p for p in s.serial if isinstance(p, ModbusBusSettings)],
        serial.build_modbus,
    ),
    SourceKind("sparkplug", _sparkplug, sparkplug.build),
    SourceKind("opcua", _opcua, opcua.build),
)


def build_sources(
    settings: CollectorSettings, context: SourceContext, kinds: Sequence[SourceKind] = KINDS
) -> list[Source]:
    """Build every source the settings configure, kind by kind; names must be unique."""
    sources = [
        kind.build(section, context)
        for kind in kinds
        if kind.in_leave or not context.leaving
        for section in kind.sections(settings)
    ]
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"two sources named {', '.join(duplicates)}: one port, one entry")
    return sources
