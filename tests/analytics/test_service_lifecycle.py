"""Service lifecycle: stored models across restarts, training on request, asset status posts."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.alerts_client import rfc3339
from analytics.cli import main
from analytics.feedback import FAULT, Period
from analytics.service import DetectorService
from analytics.settings import ApiSettings, LifecycleSettings, ServiceSettings
from analytics.status_client import StatusSender
from api.main import create_app
from api.settings import Settings
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading
from tests.analytics.helpers import SENSORS, make_correlated_rows
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve

SITE = "plant-a"
ASSETS = ("pump-a", "pump-b")
TOKEN = "service-" + "ab" * 16


class Plant:
    """1 Hz synthetic data of some assets, starting `age_s` ago, written on demand."""

    def __init__(self, client: InfluxClient, assets: tuple[str, ...], age_s: int = 3000) -> None:
        self.client = client
        self.start_ns = (time.time_ns() // 10**9 - age_s) * 10**9  # whole seconds
        self.rows = {a: make_correlated_rows(age_s, seed=i + 1)[0] for i, a in enumerate(assets)}
        self.written = 0

    def write(self, seconds: int, *, jump: str | None = None) -> None:
        """The next rows of every asset (`jump`: that asset's temperature +5)."""
        readings = []
        for asset, values in self.rows.items():
            for k in range(self.written, self.written + seconds):
                row = dict(zip(SENSORS, map(float, values[k]), strict=True))
                if asset == jump:
                    row["temperature"] += 5.0
                readings.append(Reading(SITE, asset, self.start_ns + k * 10**9, row))
        self.client.write_readings(readings)
        self.written += seconds

    def at(self, second: int) -> str:
        """RFC 3339 time of row `second`."""
        return rfc3339(self.start_ns + second * 10**9)


def settings(influx: InfluxSettings, data_dir: Path, **kw: Any) -> ServiceSettings:
    """Service settings for these tests: 300 s baseline, lookback over all written data."""
    return ServiceSettings(
        influx=influx,
        train_after_s=300,
        lookback_s=4000,
        http_port=0,
        data_dir=data_dir,
        **kw,
    )


def sample(service: DetectorService, name: str, **labels: str) -> float:
    """A metric's value (0 if never set)."""
    value = service.metrics.registry.get_sample_value(f"equipmon_analytics_{name}", labels)
    return value or 0.0


def test_models_survive_a_restart_and_bad_files_are_refitted(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ASSETS)
    plant.write(400)
    posts: list[dict[str, Any]] = []
    with DetectorService(settings(influx_settings, tmp_path), poster=posts.append) as first:
        first.tick()
        assert sample(first, "models_total", event="saved") == 2
        thresholds = {k: m.scorer.threshold_ for k, m in first.assets.items() if m.scorer}
    assert len(thresholds) == 2
    npz, _ = first.store.paths((SITE, "pump-b"))
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")  # damaged on disk

    plant.write(60)
    with DetectorService(settings(influx_settings, tmp_path), poster=posts.append) as second:
        second.tick()
        assert sample(second, "models_total", event="loaded") == 1
        assert sample(second, "models_total", event="rejected") == 1
        loaded = second.assets[(SITE, "pump-a")]
        assert loaded.scorer is not None
        assert loaded.scorer.threshold_ == thresholds[(SITE, "pump-a")]  # deterministic refit
        # The damaged one is refitted from InfluxDB (the lookback holds its baseline).
        assert second.assets[(SITE, "pump-b")].scorer is not None
        assert sample(second, "fits_total", result="ok") == 1
        assert sample(second, "models_total", event="saved") == 1
    assert [p for p in posts if p["kind"] == "equipment_anomaly"] == []


def test_training_on_request_over_http_and_the_cli(
    influx_client: InfluxClient,
    influx_settings: InfluxSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plant = Plant(influx_client, ASSETS)
    plant.write(400)
    cfg = settings(influx_settings, tmp_path, service_token=TOKEN, status_posts=False)
    with DetectorService(cfg, poster=lambda _body: None) as service:
        service.start(pollers=False)
        service.tick()
        url = f"http://127.0.0.1:{service.http_port}"
        # A confirmed fault inside the range is left out of the fit.
        start = (plant.start_ns + 50 * 10**9) / 1e9
        service.labels.periods = [Period(SITE, "pump-a", start, start + 100, FAULT)]

        before = service.assets[(SITE, "pump-a")].scorer
        monkeypatch.setenv("EQUIPMON_ANALYTICS__SERVICE_TOKEN", TOKEN)
        args = ["train", "--site", SITE, "--asset", "pump-a", "--url", url]
        assert main([*args, "--start", plant.at(0), "--end", plant.at(399)]) == 0
        answer = capsys.readouterr().out
        assert '"status": "trained"' in answer
        assert '"reason": "request"' in answer
        meta = service.store.load((SITE, "pump-a"))
        assert meta is not None
        assert meta[1]["rows"] == 400 - 101  # rows 50..150 are the fault
        assert meta[1]["reason"] == "request"
        service.tick()
        assert service.assets[(SITE, "pump-a")].scorer is not before  # swapped in
        assert sample(service, "retrains_total", reason="request", result="ok") == 1

        # Refusals: no data in the range, a bad time, a wrong token.
        assert main([*args, "--start", "2001-01-01T00:00:00Z", "--end", "2001-01-02T00:00:00Z"])
        assert "complete rows" in capsys.readouterr().out
        assert main([*args, "--start", "yesterday", "--end", plant.at(10)]) == 1
        assert "not an RFC 3339 time" in capsys.readouterr().out
        body = {"site": SITE, "asset": "pump-a", "start": plant.at(0), "end": plant.at(9)}
        assert httpx.post(f"{url}/train", json=body).status_code == 401
        wrong = {"Authorization": "Bearer service-wrong"}
        assert httpx.post(f"{url}/train", json=body, headers=wrong).status_code == 403
        assert httpx.get(f"{url}/healthz").json()["assets"] == 2


@pytest.fixture
def api_settings(database_url: str) -> Settings:
    """API settings on a database holding plant-a with pump-a and pump-b."""
    api = make_settings(database_url)
    with serve(create_app(api)) as url, httpx.Client(base_url=url, timeout=30) as client:
        harness = Api(client, api)
        site = create_site(harness, SITE)
        for asset in ASSETS:
            create_asset(harness, site["id"], code=asset)
    return api


def test_every_tick_posts_each_assets_status_to_the_api(
    influx_client: InfluxClient,
    influx_settings: InfluxSettings,
    api_settings: Settings,
    tmp_path: Path,
) -> None:
    plant = Plant(influx_client, (*ASSETS, "ghost"))  # ghost is not registered in the API
    assert api_settings.service_token is not None
    with (
        serve(create_app(api_settings)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        DetectorService(
            settings(
                influx_settings,
                tmp_path,
                service_token=api_settings.service_token,
                api=ApiSettings(url=url, retry_min_s=0.05),
            )
        ) as service,
    ):
        api = Api(http, api_settings)
        service.start(http=False, pollers=False)
        assert service.status is not None

        def statuses() -> dict[str, dict[str, Any]]:
            assert service.status is not None
            assert service.status.wait_idle(30)
            items = api.ok("admin", "GET", "/api/v1/asset-status")
            return {s["asset"]: s for s in items}

        plant.write(100)
        service.tick()
        found = statuses()
        assert set(found) == set(ASSETS)  # ghost left out, the others still posted
        assert found["pump-a"]["state"] == "learning"
        assert found["pump-a"]["learning_until"] is not None
        plant.write(400)
        service.tick()
        assert {s["state"] for s in statuses().values()} == {"normal"}
        plant.write(60, jump="pump-a")
        service.tick()
        found = statuses()
        assert found["pump-a"]["state"] == "alarm"
        assert found["pump-a"]["contributors"][0]["sensor"] == "temperature"
        assert found["pump-b"]["state"] == "normal"
        assert 0 <= found["pump-b"]["health"] <= 100
        assert sample(service, "status_items_total", outcome="rejected") == 1


def test_status_batches_coalesce_behind_a_slow_api() -> None:
    sent: list[list[dict[str, Any]]] = []
    started, release = threading.Event(), threading.Event()

    def slow_post(items: list[dict[str, Any]]) -> None:
        started.set()
        release.wait(10)
        sent.append(items)

    sender = StatusSender(slow_post)
    sender.start()
    try:
        sender.offer([{"site": SITE, "asset": "a", "n": 1}])
        assert started.wait(5)  # the first batch is in flight
        for n in (2, 3, 4):
            sender.offer([{"site": SITE, "asset": "a", "n": n}])
        release.set()
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert [batch[0]["n"] for batch in sent] == [1, 4]


def test_models_are_retrained_on_schedule_from_recent_data(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ("pump-a",))
    plant.write(400)
    clock = [plant.start_ns + 400 * 10**9]
    lifecycle = LifecycleSettings(
        retrain_every_s=600, retrain_window_s=1000, grow_short_baselines=False
    )
    cfg = settings(influx_settings, tmp_path, lifecycle=lifecycle)
    with DetectorService(cfg, poster=lambda _b: None, clock_ns=lambda: clock[0]) as service:
        service.start(http=False)
        service.tick()
        first = service.assets[(SITE, "pump-a")].scorer
        assert first is not None
        clock[0] += 300 * 10**9
        service.tick()  # not due yet
        assert sample(service, "retrains_total", reason="schedule", result="ok") == 0
        clock[0] += 400 * 10**9
        service.tick()  # due: the trainer refits on the last 1000 s in the background
        deadline = time.monotonic() + 60
        while sample(service, "retrains_total", reason="schedule", result="ok") == 0:
            assert sample(service, "retrains_total", reason="schedule", result="failed") == 0
            assert time.monotonic() < deadline, "the scheduled retrain did not finish"
            time.sleep(0.05)
        service.tick()  # swapped in
        assert service.assets[(SITE, "pump-a")].scorer is not first
        stored = service.store.load((SITE, "pump-a"))
        assert stored is not None
        assert stored[1]["reason"] == "schedule"
        # The window is rows 100..1100 (the clock); rows 100..399 were written, less the
        # service's own alarm periods (never fitted unless labelled normal).
        now_s = clock[0] / 1e9
        excluded = service.labels.excluded_periods((SITE, "pump-a"), now_s)
        kept = [
            k
            for k in range(100, 400)
            if not any(p.covers((plant.start_ns + k * 10**9) / 1e9, now_s) for p in excluded)
        ]
        assert stored[1]["rows"] == len(kept)
        assert stored[1]["train_end_s"] == (plant.start_ns + kept[-1] * 10**9) / 1e9


def test_a_first_model_on_a_short_baseline_is_refitted_once_a_whole_window_exists(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ("pump-a",))
    plant.write(1400)
    clock = [plant.start_ns + 1400 * 10**9]
    lifecycle = LifecycleSettings(retrain_every_s=10**6, retrain_window_s=1000)
    cfg = settings(influx_settings, tmp_path, lifecycle=lifecycle)
    with DetectorService(cfg, poster=lambda _b: None, clock_ns=lambda: clock[0]) as service:
        service.start(http=False)
        service.tick()  # fits on the first 300 s, scores the rest; 1000 s exist: grow
        monitor = service.assets[(SITE, "pump-a")]
        first = monitor.scorer
        assert first is not None
        deadline = time.monotonic() + 60
        while sample(service, "retrains_total", reason="grow", result="ok") == 0:
            assert sample(service, "retrains_total", reason="grow", result="failed") == 0
            assert time.monotonic() < deadline, "the growing refit did not finish"
            time.sleep(0.05)
        service.tick()  # swapped in
        assert monitor.scorer is not first
        assert monitor.baseline_span_s > 600  # most of the 1000 s window (less alarm periods)
        stored = service.store.load((SITE, "pump-a"))
        assert stored is not None
        assert stored[1]["reason"] == "grow"
        plant.write(200)
        clock[0] += 200 * 10**9
        service.tick()  # a whole-window model is not refitted again before retrain_every_s
        assert sample(service, "retrains_total", reason="grow", result="ok") == 1


def test_a_stuck_status_post_never_holds_back_alert_posts(
    influx_client: InfluxClient, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    plant = Plant(influx_client, ASSETS)
    posts: list[dict[str, Any]] = []
    blocked, release = threading.Event(), threading.Event()

    def hanging_status(_items: list[dict[str, Any]]) -> None:
        blocked.set()
        release.wait(30)

    cfg = settings(influx_settings, tmp_path)
    with DetectorService(cfg, poster=posts.append, status_poster=hanging_status) as service:
        service.start(http=False)
        plant.write(400)
        service.tick()
        assert blocked.wait(10)  # the first status batch hangs in its POST
        plant.write(60, jump="pump-a")
        service.tick()
        plant.write(10, jump="pump-a")
        service.tick()
        assert service.outbox.wait_empty(10)
        # The jump's alert reached the API. (The synthetic load's own noise can raise and clear
        # one alarm before the jump; how long that one is held is the alarm policy's business.)
        sent = [(p["asset"], p["kind"], p["state"]) for p in posts]
        assert sent[-1] == ("pump-a", "equipment_anomaly", "active")
        assert {(a, k) for a, k, _ in sent} == {("pump-a", "equipment_anomaly")}
        assert service.status is not None
        assert not service.status.wait_idle(0.2)  # still stuck, newer batches coalesced
        release.set()
        assert service.status.wait_idle(30)
    assert sample(service, "status_items_total", outcome="coalesced") >= 2
