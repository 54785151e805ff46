"""Sparkplug B: the Eclipse Tahu schema, its topic namespace and the decoding of its metrics.

``sparkplug_b_pb2`` is generated from ``sparkplug_b.proto`` (Eclipse Tahu, EPL-2.0, licence in
this folder) by ``scripts/gen-sparkplug``; nothing here parses protobuf by hand. What a host
application does with births, deaths, aliases and sequence numbers is the collector's
(collector.sparkplug); this package only says what one message means.
"""

from telemetry.sparkplug.metrics import (
    DecodedMetric,
    MetricSkip,
    decode_metric_value,
    decode_payload,
    sensor_name,
)
from telemetry.sparkplug.topics import (
    NAMESPACE,
    MessageType,
    SparkplugTopic,
    parse_topic,
    state_topic,
)

__all__ = [
    "NAMESPACE",
    "DecodedMetric",
    "MessageType",
    "MetricSkip",
    "SparkplugTopic",
    "decode_metric_value",
    "decode_payload",
    "parse_topic",
    "sensor_name",
    "state_topic",
]
