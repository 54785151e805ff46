"""Shared reading contract: the Reading model, payload codecs, topic helpers and InfluxDB access.

The names below are the package's public surface, what the services build on (as httpx's
``__init__`` lists its own); everything else in its modules is an implementation detail that
may change. ``FastCodec`` is the fast JSON and line-protocol codec that the collector's intake and
the API's gateway push share (byte for byte the general path's output). Subpackages with a
surface of their own: ``telemetry.influx`` (the InfluxDB client
and settings), ``telemetry.sparkplug`` (the Sparkplug B schema and decoding) and
``telemetry.settings`` (the settings base of every service). Every error raised here derives
from ``TelemetryError``.
"""

from telemetry.codecs.fastpath import FastCodec
from telemetry.codecs.json_codec import decode_json, encode_json, encode_json_batch
from telemetry.codecs.line_protocol import (
    MEASUREMENT,
    LineFormatter,
    decode_line_protocol,
    escape_key,
    escape_measurement,
    format_line,
)
from telemetry.errors import (
    DecodeError,
    InfluxError,
    InfluxFatalError,
    InfluxRejectedError,
    InfluxRetryableError,
    PayloadError,
    TelemetryError,
    ValidationError,
)
from telemetry.reading import (
    DEFAULT_LIMITS,
    NS_PER_S,
    QUALITIES,
    RESERVED_SENSOR_NAMES,
    Quality,
    Reading,
    ValidationLimits,
    build_reading,
    now_ns,
    validate_name,
    validate_reading,
    validate_time,
    validate_value,
)
from telemetry.retry import Backoff, log_retry
from telemetry.timeutil import format_rfc3339_ns, parse_rfc3339_ns, precision_factor
from telemetry.topics import DEFAULT_PREFIX, TopicInfo, parse_topic, telemetry_topic

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_PREFIX",
    "MEASUREMENT",
    "NS_PER_S",
    "QUALITIES",
    "RESERVED_SENSOR_NAMES",
    "Backoff",
    "DecodeError",
    "FastCodec",
    "InfluxError",
    "InfluxFatalError",
    "InfluxRejectedError",
    "InfluxRetryableError",
    "LineFormatter",
    "PayloadError",
    "Quality",
    "Reading",
    "TelemetryError",
    "TopicInfo",
    "ValidationError",
    "ValidationLimits",
    "build_reading",
    "decode_json",
    "decode_line_protocol",
    "encode_json",
    "encode_json_batch",
    "escape_key",
    "escape_measurement",
    "format_line",
    "format_rfc3339_ns",
    "log_retry",
    "now_ns",
    "parse_rfc3339_ns",
    "parse_topic",
    "precision_factor",
    "telemetry_topic",
    "validate_name",
    "validate_reading",
    "validate_time",
    "validate_value",
]
