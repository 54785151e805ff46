"""Prometheus metrics of one app instance (its own registry, so apps in tests do not clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Request latency by route template, and the readings pipeline's counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "equipmon_api_request_seconds",
            "HTTP request latency by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
            # Spans a cached GET (~1 ms) to a 10,000-reading push into a slow InfluxDB (~10 s).
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.readings_written = Counter(
            "equipmon_api_readings_written_total",
            "Readings written to InfluxDB from gateway pushes.",
            registry=self.registry,
        )
        self.batches_rejected = Counter(
            "equipmon_api_batches_rejected_total",
            "Gateway batches refused, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        self.alerts_posted = Counter(
            "equipmon_api_alerts_posted_total",
            "Alert conditions posted by the analytics service, by outcome.",
            ["result"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "equipmon_api_notifications_total",
            "Notification delivery attempts by channel and resulting status "
            "(delivered, pending = will retry, dead = gave up).",
            ["channel", "status"],
            registry=self.registry,
        )
        self.channel_up = Gauge(
            "equipmon_api_notification_channel_up",
            "1 if the channel's last delivery attempt succeeded, 0 if it failed.",
            ["channel"],
            registry=self.registry,
        )
        self.notifications_dead = Gauge(
            "equipmon_api_notifications_dead",
            "Notifications given up after the last attempt, by channel (in the database).",
            ["channel"],
            registry=self.registry,
        )
