"""Configuration of the Sparkplug B host application (the collector's ``sparkplug`` section)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SparkplugSettings(BaseModel):
    """Read Sparkplug B edge nodes on the collector's broker (mqtt.url, its login and TLS)."""

    enabled: bool = Field(False, description="host Sparkplug B edge nodes on the MQTT broker")
    groups: list[str] = Field(
        default_factory=list,
        description="group ids this collector hosts (empty: every group). Replicas split "
        "Sparkplug by group id, never through a shared subscription (docs/scaling.md)",
    )
    host_id: str = Field(
        "equipmon",
        description="primary host id: the collector publishes spBv1.0/STATE/<host_id> (retained, "
        "with an offline will) so edge nodes store and forward while it is away; empty: not a "
        "primary host",
    )
    client_id: str = Field(
        "", description="MQTT client id of the Sparkplug session (default: <client_id>-sparkplug)"
    )
    site: str = Field("{group}", description="site name from the ids {group}, {node} and {device}")
    asset: str = Field(
        "{device}",
        description="asset name from {group}, {node} and {device} ({device} is the edge node's "
        "id for the node's own metrics)",
    )
    rebirth_interval_s: float = Field(
        5.0, gt=0, description="at most one rebirth request per edge node in this time"
    )
