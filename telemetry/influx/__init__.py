"""InfluxDB access: settings, the client (write and InfluxQL read) and failure classification.

Public surface: ``InfluxClient``, ``InfluxSettings``, ``Series``, the InfluxQL quoting helpers,
and the response classification the writers share; failures raise ``telemetry.InfluxError``
subclasses.
"""

from telemetry.influx.classify import classify_response, parse_retry_after
from telemetry.influx.client import InfluxClient, Series, quote_ident, quote_literal
from telemetry.influx.settings import InfluxSettings

__all__ = [
    "InfluxClient",
    "InfluxSettings",
    "Series",
    "classify_response",
    "parse_retry_after",
    "quote_ident",
    "quote_literal",
]
