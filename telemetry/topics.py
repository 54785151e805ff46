"""MQTT topic layout: ``<prefix>/<site>/<asset>/telemetry`` (JSON) and ``.../telemetry/lp``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from telemetry.errors import DecodeError

DEFAULT_PREFIX = "equipmon"

PayloadFormat = Literal["json", "lp"]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a telemetry topic says: the site, the asset (or gateway id) and the payload format."""

    site: str
    asset: str
    format: PayloadFormat


def telemetry_topic(
    site: str, asset: str, payload_format: PayloadFormat = "json", prefix: str = DEFAULT_PREFIX
) -> str:
    """The topic a device publishes its readings to."""
    suffix = "telemetry/lp" if payload_format == "lp" else "telemetry"
    return f"{prefix}/{site}/{asset}/{suffix}"


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> TopicInfo:
    """Split a telemetry topic; anything else raises DecodeError(reason='unknown_topic')."""
    parts = topic.split("/")
    prefix_parts = prefix.split("/")
    n = len(prefix_parts)
    if parts[:n] == prefix_parts and len(parts) in (n + 3, n + 4):
        site, asset, kind = parts[n], parts[n + 1], parts[n + 2 :]
        if site and asset:
            if kind == ["telemetry"]:
                return TopicInfo(site, asset, "json")
            if kind == ["telemetry", "lp"]:
                return TopicInfo(site, asset, "lp")
    raise DecodeError(
        f"topic {topic!r} does not match {prefix}/<site>/<asset>/telemetry[/lp]",
        where="topic",
        reason="unknown_topic",
    )
