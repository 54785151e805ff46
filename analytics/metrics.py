"""Prometheus metrics of the detector service (served by telemetry.health_http)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

NS = "equipmon_analytics"


class Metrics:
    """Every metric the service exports, on a registry of its own (no globals)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.ticks = Counter(f"{NS}_ticks", "Ticks run, by result.", ["result"], registry=r)
        self.tick_seconds = Histogram(f"{NS}_tick_seconds", "Duration of one tick.", registry=r)
        self.rows_scored = Counter(f"{NS}_rows_scored", "Rows fed to fitted scorers.", registry=r)
        self.rows_buffered = Counter(
            f"{NS}_rows_buffered", "Rows kept as baseline of assets not yet fitted.", registry=r
        )
        self.fits = Counter(
            f"{NS}_fits", "Asset baselines fitted, by result.", ["result"], registry=r
        )
        self.assets = Gauge(f"{NS}_assets", "Assets seen, by phase.", ["phase"], registry=r)
        self.alarms_active = Gauge(f"{NS}_alarms_active", "Assets in alarm.", registry=r)
        self.transitions = Counter(
            f"{NS}_alarm_transitions", "Alarm raises and clears.", ["state"], registry=r
        )
        self.posts = Counter(
            f"{NS}_alert_posts", "Alert post attempts, by outcome.", ["outcome"], registry=r
        )
        self.outbox = Gauge(f"{NS}_outbox_pending", "Alert posts not yet delivered.", registry=r)
