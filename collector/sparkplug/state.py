"""What the host holds per edge node: its session, and the metrics each birth defined."""

from __future__ import annotations

from dataclasses import dataclass, field

NS_PER_MS = 1_000_000
SEQ_MODULUS = 256  # sequence numbers wrap after 255


@dataclass(slots=True)
class Definition:
    """One metric of a birth: its name, the sensor it is stored as (None: not stored), type."""

    name: str
    sensor: str | None
    datatype: int


@dataclass(frozen=True, slots=True, eq=False)
class Row:
    """The sensors of one tuple of aliases, as a data message of a device sends them."""

    names: tuple[str, ...]  # each alias's sensor, in the message's order
    e_count: int  # letters ``e`` and ``l`` in the distinct names (telemetry's plain_fields)
    l_count: int


@dataclass(slots=True, eq=False)
class Aliases:
    """The metrics one birth defined, by alias and by name."""

    by_alias: dict[int, Definition] = field(default_factory=dict)
    by_name: dict[str, Definition] = field(default_factory=dict)
    # Non-zero aliases of Float and Double metrics stored as sensors: (sensor, value field).
    fast: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Alias tuples seen in data, resolved through ``fast`` (collector/sparkplug/runs.py).
    rows: dict[tuple[int, ...], Row] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Node:
    """One edge node's session."""

    online: bool = False
    seq: int = -1
    bd_seq: int | None = None
    node_metrics: Aliases = field(default_factory=Aliases)
    devices: dict[str, Aliases] = field(default_factory=dict)
    rebirth_asked_s: float | None = None
