"""The registry of source kinds, and the sources a collector's settings configure.

A kind is a name and a factory ``(settings section, SourceContext) -> Source``. The service
builds every source through ``build_sources`` and knows none of them by name; a new protocol
(Sparkplug B, OPC UA) is one module with its settings model and a factory, registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collector.errors import ConfigError
from collector.sources import mqtt, serial
from collector.sources.base import Source, SourceContext

if TYPE_CHECKING:
    from collector.settings import CollectorSettings

SourceFactory = Callable[[Any, SourceContext], Source]

KINDS: dict[str, SourceFactory] = {
    "mqtt": mqtt.build,
    "ascii": serial.build_ascii,
    "modbus": serial.build_modbus,
}


def configured(settings: CollectorSettings, *, leaving: bool = False) -> list[tuple[str, Any]]:
    """(kind, settings section) of every source the settings configure, in start order.

    The MQTT section is always there (with the replica's client id); every ``serial`` entry is
    an ``ascii`` port or a ``modbus`` bus. ``leave`` runs only the sources that hand a queue
    over (MQTT): it reads nothing new.
    """
    # The client id is the replica's (settings.client_id), unless set explicitly.
    sections: list[tuple[str, Any]] = [
        ("mqtt", settings.mqtt.model_copy(update={"client_id": settings.client_id}))
    ]
    if not leaving:
        sections += [(port.protocol, port) for port in settings.serial]
    return sections


def build_sources(settings: CollectorSettings, context: SourceContext) -> list[Source]:
    """Build every configured source; a kind nobody registered is a configuration error."""
    sources = []
    for kind, section in configured(settings, leaving=context.leaving):
        factory = KINDS.get(kind)
        if factory is None:
            raise ConfigError(f"no source kind {kind!r} (known: {', '.join(sorted(KINDS))})")
        sources.append(factory(section, context))
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"two sources named {', '.join(duplicates)}: one port, one entry")
    return sources
