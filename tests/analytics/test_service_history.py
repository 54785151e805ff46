"""A first start on stored history: the service fits each new asset on what InfluxDB already
holds and scores at once, instead of learning from live data for ``train_after_s``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from analytics.service import DetectorService
from analytics.settings import LifecycleSettings, ServiceSettings
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.analytics.test_service_lifecycle import ASSETS, SITE, Plant, sample


def history_settings(
    influx: InfluxSettings, data_dir: Path, lookback_s: float, **kw: Any
) -> ServiceSettings:
    """A 300 s live baseline, a 4000 s retrain window, a first tick reading ``lookback_s``."""
    return ServiceSettings(
        influx=influx,
        train_after_s=300,
        lookback_s=lookback_s,
        http_port=0,
        data_dir=data_dir,
        lifecycle=LifecycleSettings(retrain_window_s=4000),
        status_posts=False,
        **kw,
    )


def tick_until(service: DetectorService, done: Callable[[], bool], what: str) -> None:
    """Tick (the trainer works on its own thread) until ``done``, within a deadline."""
    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        service.tick()
        time.sleep(0.05)


def test_a_start_on_stored_history_fits_on_all_of_it_and_scores_at_once(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ASSETS, age_s=2100)
    plant.write(2000)
    posts: list[dict[str, Any]] = []
    # The first tick reads 200 s back: less than train_after_s, and the data goes on before.
    cfg = history_settings(influx_settings, tmp_path, lookback_s=200)
    with DetectorService(cfg, poster=posts.append) as svc:
        svc.start(pollers=False)
        svc.tick()
        url = f"http://127.0.0.1:{svc.http_port}"
        for item in httpx.get(f"{url}/assets").json()["assets"]:
            # Until its fit is in, an asset says it is learning, and by when at the latest.
            assert item["scoring"] or item["message"] == "fitting on stored history"
            assert item["scoring"] or item["learning_until"] is not None
        tick_until(svc, lambda: all(m.scorer for m in svc.assets.values()), "history fits")
        for asset in ASSETS:
            stored = svc.store.load((SITE, asset))
            assert stored is not None
            # The whole history, not the 200 s the first tick read nor a live train_after_s.
            assert stored[1]["reason"] == "history"
            assert stored[1]["rows"] >= 1900
        assert sample(svc, "retrains_total", reason="history", result="ok") == 2
        plant.write(30)
        svc.tick()
        assert sample(svc, "rows_scored_total") >= 60
        states = httpx.get(f"{url}/assets").json()["assets"]
        assert {(a["asset"], a["scoring"], a["state"]) for a in states} == {
            (asset, True, "normal") for asset in ASSETS
        }
        assert httpx.get(f"{url}/healthz").json()["scoring"] == 2
    assert [p for p in posts if p["kind"] == "equipment_anomaly"] == []


def test_too_little_history_means_learning_from_live_data(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ASSETS[:1], age_s=700)
    plant.write(250)  # less than train_after_s (300 s), and older than the first read
    cfg = history_settings(influx_settings, tmp_path, lookback_s=500)
    with DetectorService(cfg, poster=lambda _body: None) as svc:
        svc.start(http=False, pollers=False)
        svc.tick()
        monitor = svc.assets[(SITE, ASSETS[0])]
        tick_until(svc, lambda: not monitor.awaiting_history, "the history fit to give up")
        assert sample(svc, "retrains_total", reason="history", result="failed") == 1
        item = svc.asset_states()["assets"][0]
        assert (item["state"], item["scoring"]) == ("learning", False)
        assert "message" not in item
        assert item["learning_until"] is not None
        plant.write(400)  # the live path fits once its rows span train_after_s
        svc.tick()
        assert monitor.scorer is not None
        stored = svc.store.load((SITE, ASSETS[0]))
        assert stored is not None
        assert stored[1]["reason"] == "auto"


def test_an_asset_whose_data_starts_inside_the_first_read_learns_as_before(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ASSETS[:1], age_s=400)
    plant.write(350)
    cfg = history_settings(influx_settings, tmp_path, lookback_s=4000)
    with DetectorService(cfg, poster=lambda _body: None) as svc:
        svc.start(http=False, pollers=False)
        svc.tick()
        assert svc.assets[(SITE, ASSETS[0])].scorer is not None  # in the tick, as before
        assert sample(svc, "retrains_total", reason="history", result="failed") == 0
        assert sample(svc, "retrains_total", reason="history", result="ok") == 0
