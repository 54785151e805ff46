"""Payload codecs: JSON (single reading and batch) and InfluxDB line protocol."""
