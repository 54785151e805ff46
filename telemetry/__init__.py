"""Shared reading contract: the Reading model, payload codecs, topic helpers and InfluxDB access."""
