"""Feedback from work-order outcomes, read from the real API over HTTP (uvicorn, SQLite)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from analytics.alerts_client import AlertsClient, rfc3339
from analytics.feedback import FAULT, NORMAL, LabelStore
from analytics.model_store import Baseline, ModelStore
from analytics.service import DetectorService
from analytics.settings import ApiSettings, LifecycleSettings, ServiceSettings
from analytics.training import make_keep
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading
from tests.analytics.helpers import SENSORS, make_correlated_rows
from tests.api.helpers import Api

SITE, ASSET = "plant-a", "pump-01"
KEY = (SITE, ASSET)


def close_order(api: Api, alert: dict[str, Any], resolution: str) -> None:
    """Take the alert's work order through to completed with a resolution."""
    path = f"/api/v1/work-orders/{alert['work_order_id']}/transitions"
    for step in (
        {"to": "assigned", "assignee_id": api.user_ids["technician"]},
        {"to": "in_progress"},
        {"to": "completed", "resolution": resolution},
    ):
        api.ok("facilities", "POST", path, json=step)


def post_alert(client: AlertsClient, kind: str, mode: str, state: str, at_s: float) -> Any:
    """An alert post exactly as the service makes it."""
    return client.post(
        {
            "site": SITE,
            "asset": ASSET,
            "kind": kind,
            "failure_mode": mode,
            "state": state,
            "severity": "high",
            "detected_at": rfc3339(int(at_s * 1e9)),
            "contributors": [],
            "message": "test",
        }
    )


def settings_for(api: Api, influx: InfluxSettings, data_dir: Path) -> ServiceSettings:
    """Service settings against the test API."""
    assert api.settings.service_token is not None
    return ServiceSettings(
        influx=influx,
        api=ApiSettings(url=str(api.client.base_url), timeout_s=5, retry_min_s=0.05),
        service_token=api.settings.service_token,
        train_after_s=300,
        lookback_s=3600,
        data_dir=data_dir,
        status_posts=False,
    )


def test_outcomes_become_labels_and_raise_the_threshold(
    api: Api, influx_settings: InfluxSettings, influx_client: InfluxClient, tmp_path: Path
) -> None:
    now = time.time()
    # A fitted model of pump-01 on disk, and fresh data after it in InfluxDB.
    values, times = make_correlated_rows(460, seed=21)
    t0 = now - 600
    ModelStore(tmp_path / "models").save(
        KEY, Baseline(tuple(SENSORS), t0 + times[:400], values[:400])
    )
    influx_client.write_readings(
        [
            Reading(
                SITE,
                ASSET,
                int((t0 + times[k]) * 1e9),
                dict(zip(SENSORS, map(float, values[k]), strict=True)),
            )
            for k in range(400, 460)
        ]
    )
    assert api.settings.service_token is not None
    token = api.settings.service_token.get_secret_value()
    client = AlertsClient(ApiSettings(url=str(api.client.base_url)), token)
    nff = post_alert(client, "equipment_anomaly", "anomaly", "active", now - 3000)
    post_alert(client, "equipment_anomaly", "anomaly", "normal", now - 2400)
    fault = post_alert(client, "instrument_stuck", "flow", "active", now - 1800)
    client.close()
    close_order(api, nff, "no_fault_found")
    close_order(api, fault, "fixed")

    with DetectorService(settings_for(api, influx_settings, tmp_path)) as service:
        service.start(http=False, pollers=False)
        service.tick()
        monitor = service.assets[KEY]
        assert monitor.scorer is not None  # loaded from the store, no waiting for a baseline
        before = monitor.scorer.threshold_
        service.poll_feedback()
        service.poll_feedback()  # the same outcomes again change nothing
        labels = service.labels
        assert sorted((p.label, p.alert_id) for p in labels.periods) == [
            (FAULT, fault["id"]),
            (NORMAL, nff["id"]),
        ]
        normal = next(p for p in labels.periods if p.label == NORMAL)
        assert normal.start_s == pytest.approx(now - 3000, abs=0.01)
        assert normal.end_s == pytest.approx(now - 2400, abs=0.01)
        assert labels.threshold_factor(KEY, time.time()) == pytest.approx(1.25, rel=1e-4)
        sample = service.metrics.registry.get_sample_value
        assert sample("equipmon_analytics_feedback_labels_total", {"label": "normal"}) == 1
        assert sample("equipmon_analytics_feedback_labels_total", {"label": "fault"}) == 1

        # The trainer refits the stored baseline with the new factor, warmed on recent data.
        done = {"reason": "feedback", "result": "ok"}
        deadline = time.monotonic() + 60
        while not sample("equipmon_analytics_retrains_total", done):
            assert time.monotonic() < deadline, "the feedback refit did not finish"
            time.sleep(0.05)
        service.tick()  # swapped in
        assert monitor.scorer is not None
        assert monitor.scorer.threshold_ == pytest.approx(1.25 * before, rel=1e-3)
        assert sample("equipmon_analytics_retrains_total", done) == 1
        meta = service.store.load(KEY)
        assert meta is not None
        assert meta[1]["threshold_factor"] == pytest.approx(1.25, rel=1e-4)

        keep = make_keep(KEY, labels, {}, time.time())
        assert not keep(int((now - 1000) * 1e9), {})  # inside the confirmed fault (still open)
        assert keep(int((now - 2800) * 1e9), {})  # the NFF period is normal data

    reloaded = LabelStore(tmp_path / "labels.json", LifecycleSettings())
    assert len(reloaded.periods) == 2
    assert reloaded.since is not None
    applied, _ = reloaded.apply_outcomes(
        [
            {
                "alert_id": nff["id"],
                "outcome": "no_fault_found",
                "site": SITE,
                "asset": ASSET,
                "kind": "equipment_anomaly",
                "opened_at": "2026-01-01T00:00:00Z",
                "cleared_at": None,
            }
        ],
        time.time(),
    )
    assert applied == []  # remembered across restarts


def test_the_factor_is_bounded_and_fades(tmp_path: Path) -> None:
    settings = LifecycleSettings(nff_factor=1.25, nff_cap=2.0, nff_decay_s=86400)
    labels = LabelStore(tmp_path / "labels.json", settings)
    items = [
        {
            "alert_id": k,
            "outcome": "no_fault_found",
            "site": SITE,
            "asset": ASSET,
            "kind": "equipment_anomaly",
            "opened_at": "2026-01-01T00:00:00Z",
            "cleared_at": None,
        }
        for k in range(6)
    ]
    items.append({"alert_id": "x"})  # malformed: skipped, not fatal
    applied, retune = labels.apply_outcomes(items, now_s=2e9)
    assert applied == [NORMAL] * 6
    assert retune == {KEY}
    at = labels.nff[0][2]
    assert labels.threshold_factor(KEY, at) == 2.0  # 1.25^6 = 3.8, capped
    assert labels.threshold_factor(KEY, at + 30 * 86400) == pytest.approx(1.0, abs=1e-6)
    assert labels.threshold_factor(("plant-a", "other"), at) == 1.0


def test_a_repaired_asset_is_refitted_on_post_repair_data(
    api: Api, influx_settings: InfluxSettings, influx_client: InfluxClient, tmp_path: Path
) -> None:
    now = time.time()
    # The stored model knew the worn pump; the repaired one runs at another level.
    values, times = make_correlated_rows(800, seed=5)
    ModelStore(tmp_path / "models").save(
        KEY, Baseline(tuple(SENSORS), now - 1200 + times[:400], values[:400])
    )
    assert api.settings.service_token is not None
    client = AlertsClient(
        ApiSettings(url=str(api.client.base_url)), api.settings.service_token.get_secret_value()
    )
    fault = post_alert(client, "equipment_anomaly", "bearing_wear", "active", now - 700)
    client.close()
    close_order(api, fault, "fixed")
    repaired = time.time()
    after = values[400:800] + 0.3  # the new normal, 400 s of it after the repair
    influx_client.write_readings(
        [
            Reading(
                SITE,
                ASSET,
                int((repaired + 1 + k) * 1e9),
                dict(zip(SENSORS, map(float, after[k]), strict=True)),
            )
            for k in range(400)
        ]
    )
    clock = [int((repaired + 420) * 1e9)]
    cfg = settings_for(api, influx_settings, tmp_path).model_copy(
        update={"lifecycle": LifecycleSettings(post_repair_s=300, retrain_every_s=10**6)}
    )
    with DetectorService(cfg, clock_ns=lambda: clock[0]) as service:
        service.start(http=False, pollers=False)
        service.tick()
        monitor = service.assets[KEY]
        assert monitor.scorer is not None
        assert monitor.baseline_start_s < repaired
        service.poll_feedback()
        assert service.labels.repairs == {KEY: pytest.approx(repaired, abs=2)}
        # The confirmed fault ends at the repair: post-repair data may be fitted.
        (period,) = [p for p in service.labels.periods if p.label == FAULT]
        assert period.end_s is not None
        assert period.end_s <= repaired + 1
        service.tick()  # 400 s of post-repair data >= post_repair_s: the refit is queued
        sample = service.metrics.registry.get_sample_value
        done = {"reason": "repair", "result": "ok"}
        deadline = time.monotonic() + 60
        while not sample("equipmon_analytics_retrains_total", done):
            assert not sample(
                "equipmon_analytics_retrains_total", {"reason": "repair", "result": "failed"}
            )
            assert time.monotonic() < deadline, "the post-repair refit did not finish"
            time.sleep(0.05)
        service.tick()  # swapped in
        assert monitor.baseline_start_s > repaired
        stored = service.store.load(KEY)
        assert stored is not None
        assert stored[1]["reason"] == "repair"
        assert stored[0].start_s > repaired
        assert service.labels.repairs == {}  # done once
    assert LabelStore(tmp_path / "labels.json", LifecycleSettings()).repairs == {}


def test_a_pending_repair_survives_a_restart(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.json", LifecycleSettings())
    store.apply_outcomes(
        [
            {
                "alert_id": 7,
                "outcome": "confirmed_fault",
                "site": SITE,
                "asset": ASSET,
                "kind": "equipment_anomaly",
                "opened_at": "2026-12-01T08:00:00Z",
                "cleared_at": None,
                "completed_at": "2026-12-01T10:00:00Z",
            }
        ],
        now_s=1_800_000_000.0,
    )
    store.save()
    reloaded = LabelStore(tmp_path / "labels.json", LifecycleSettings())
    assert reloaded.repairs == {KEY: 1_796_119_200.0}
    # Not due until an hour of post-repair data exists; then handed out once.
    assert reloaded.repairs_due(3600, {KEY: 1_796_119_200.0 + 3599}) == []
    assert reloaded.repairs_due(3600, {KEY: 1_796_119_200.0 + 3600}) == [(KEY, 1_796_119_200.0)]
    assert reloaded.repairs_due(3600, {KEY: 1_796_126_000.0}) == []
