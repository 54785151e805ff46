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
        self.series_skipped = Counter(
            f"{NS}_series_skipped",
            "Asset series read from InfluxDB and dropped unparsed: another shard's assets.",
            registry=r,
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
        self.instrument = Counter(
            f"{NS}_instrument_alerts",
            "Instrument alert raises and clears, by kind and state.",
            ["kind", "state"],
            registry=r,
        )
        self.reclassified = Counter(
            f"{NS}_model_alarms_reclassified",
            "Model alarms led by a suspect sensor, reported as instrument problems.",
            registry=r,
        )
        self.labels = Counter(
            f"{NS}_feedback_labels",
            "Work-order outcome labels applied, by label.",
            ["label"],
            registry=r,
        )
        self.models = Counter(
            f"{NS}_models", "Stored models saved, loaded or rejected.", ["event"], registry=r
        )
        self.retrains = Counter(
            f"{NS}_retrains",
            "Refits on request, schedule or feedback, by reason and result.",
            ["reason", "result"],
            registry=r,
        )
        self.status_posts = Counter(
            f"{NS}_status_items", "Asset status items, by outcome.", ["outcome"], registry=r
        )
        self.meter_posts = Counter(
            f"{NS}_meter_posts",
            "Posts of counted meters (running hours, starts) to the API, by result.",
            ["result"],
            registry=r,
        )
