"""The Sparkplug B topic namespace: ``spBv1.0/<group>/<type>/<edge node>[/<device>]``.

Sparkplug 3.0 adds the primary host's ``spBv1.0/STATE/<host id>``. Ids are validated as the
specification says: no ``/``, ``+`` or ``#`` (they cannot be in a topic level anyway) and not
empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from telemetry.errors import DecodeError

NAMESPACE = "spBv1.0"

MessageType = Literal["NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"]
MESSAGE_TYPES: frozenset[str] = frozenset(get_args(MessageType))
_DEVICE_TYPES = frozenset(("DBIRTH", "DDEATH", "DDATA", "DCMD"))


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    """What a Sparkplug topic names: group, message type, edge node and (for D*) device."""

    group: str
    message_type: MessageType
    edge_node: str
    device: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.device}" if self.device is not None else ""
        return f"{NAMESPACE}/{self.group}/{self.message_type}/{self.edge_node}{tail}"

    @property
    def node_key(self) -> tuple[str, str]:
        """The edge node's identity: sequence numbers and births are kept per (group, node)."""
        return (self.group, self.edge_node)


def parse_topic(topic: str) -> SparkplugTopic:
    """Split a Sparkplug B topic; raise DecodeError (reason ``bad_topic``) for anything else."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        raise DecodeError(
            f"{topic!r} is not spBv1.0/<group>/<type>/<edge node>[/<device>]", reason="bad_topic"
        )
    _, group, message_type, edge_node, *device = parts
    if message_type not in MESSAGE_TYPES:
        raise DecodeError(f"{message_type!r} is not a Sparkplug B message type", reason="bad_topic")
    if (message_type in _DEVICE_TYPES) != bool(device):
        raise DecodeError(
            f"{message_type} {'needs' if message_type in _DEVICE_TYPES else 'takes no'} device id",
            reason="bad_topic",
        )
    if not group or not edge_node or (device and not device[0]):
        raise DecodeError(f"{topic!r} has an empty id", reason="bad_topic")
    return SparkplugTopic(
        group, cast(MessageType, message_type), edge_node, device[0] if device else None
    )


def state_topic(host_id: str) -> str:
    """The retained topic a Sparkplug 3.0 primary host publishes its online state to."""
    return f"{NAMESPACE}/STATE/{host_id}"
