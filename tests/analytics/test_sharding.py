"""Sharding: two real ``python -m analytics run`` processes split the fleet, each asset once."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from analytics.settings import ServiceSettings, ShardSettings
from analytics.shard import Shard, asset_hash, shard_of
from analytics.source import InfluxWindows
from api.main import create_app
from api.settings import Settings
from stack.process import ManagedProcess, free_port
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading
from tests.analytics.helpers import SENSORS, make_correlated_rows
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve

REPO = Path(__file__).resolve().parents[2]
SITES = ("plant-a", "plant-b")
# Six assets per site; under the hash split of 2 both shards get some of each site.
FLEET = tuple((site, f"{site[-1]}-pump-{n}") for site in SITES for n in range(1, 7))
BASELINE_S = 300
ROWS = 400  # per asset: 301 buffered into the baseline, the rest scored


def test_the_shard_hash_is_stable_and_splits_every_asset_exactly_once() -> None:
    # Pinned: a changed hash would silently move assets between running processes.
    # (The first 8 bytes of sha256(b"plant-a/pump-1"), big-endian.)
    assert asset_hash("plant-a", "pump-1") == 0xF01C2C300DF4BEEA
    keys = [(f"site-{s}", f"asset-{a}") for s in range(10) for a in range(100)]
    for count in (2, 3, 5):
        shards = [Shard(ShardSettings(count=count, index=k)) for k in range(count)]
        for key in keys:
            assert sum(shard.owns(key) for shard in shards) == 1
            assert shards[shard_of(key, count)].owns(key)
        sizes = [sum(map(shard.owns, keys)) for shard in shards]
        assert min(sizes) > 0.7 * len(keys) / count  # no shard left (nearly) empty


def test_shard_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__SITES", "plant-a, plant-b,plant-a")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__COUNT", "3")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__INDEX", "2")
    shard = ServiceSettings().shard
    assert (shard.sites, shard.count, shard.index) == (["plant-a", "plant-b"], 3, 2)
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__SITES", '["plant-c"]')
    assert ServiceSettings().shard.sites == ["plant-c"]
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__INDEX", "3")
    with pytest.raises(ValidationError, match=r"shard\.index must be below shard\.count"):
        ServiceSettings()
    described = Shard(ShardSettings(sites=["b", "a"], count=2, index=1)).describe()
    assert described == "sites a, b; hash 1 of 2"


def write_fleet(client: InfluxClient) -> None:
    """ROWS seconds of 1 Hz data of every asset of FLEET, ending a minute ago."""
    start_ns = (time.time_ns() // 10**9 - ROWS - 60) * 10**9
    readings = []
    for n, (site, asset) in enumerate(FLEET):
        values = make_correlated_rows(ROWS, seed=n + 1)[0]
        for k in range(ROWS):
            row = dict(zip(SENSORS, map(float, values[k]), strict=True))
            readings.append(Reading(site, asset, start_ns + k * 10**9, row))
    client.write_readings(readings)


def test_the_read_asks_influxdb_for_the_shards_sites_only(influx_client: InfluxClient) -> None:
    write_fleet(influx_client)
    by_site = Shard(ShardSettings(sites=["plant-b"]))
    windows = InfluxWindows(
        influx_client,
        lookback_s=ROWS + 120,
        lateness_s=0,
        clock_ns=time.time_ns,
        where=by_site.where(),
        owns=by_site.owns,
    )
    assert set(windows.fetch()) == {key for key in FLEET if key[0] == "plant-b"}
    assert windows.skipped == 0  # the other site was never sent
    by_hash = Shard(ShardSettings(count=2, index=0))
    windows = InfluxWindows(
        influx_client, lookback_s=ROWS + 120, lateness_s=0, clock_ns=time.time_ns, owns=by_hash.owns
    )
    mine = {key for key in FLEET if by_hash.owns(key)}
    assert set(windows.fetch()) == mine
    assert windows.skipped == len(FLEET) - len(mine)


class AnalyticsProcess(ManagedProcess):
    """``python -m analytics run`` set up by environment variables; ready once /healthz answers."""

    name = "analytics"

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(log_path)
        self.http_port = free_port()
        self.env = {**os.environ, **env, "EQUIPMON_ANALYTICS__HTTP_PORT": str(self.http_port)}

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "analytics", "run"]

    def environment(self) -> dict[str, str]:
        return self.env

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}{path}", timeout=5)
        except httpx.HTTPError:
            return None

    def is_ready(self) -> bool:
        return self.get("/healthz") is not None

    def metrics(self) -> dict[str, float]:
        """Its /metrics as {'name{labels}': value}."""
        response = self.get("/metrics")
        values: dict[str, float] = {}
        for line in response.text.splitlines() if response is not None else ():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values

    def ticks(self) -> float:
        """Ticks it has completed."""
        return self.metrics().get('equipmon_analytics_ticks_total{result="ok"}', 0.0)

    def wait_ticks(self, count: float, timeout_s: float = 30.0) -> None:
        """Wait until it has completed ``count`` ticks."""
        wait_for(lambda: self.ticks() >= count, timeout_s, f"{count:.0f} ticks")

    def health(self) -> dict[str, Any]:
        response = self.get("/healthz")
        assert response is not None, self.log_tail()
        body: dict[str, Any] = response.json()
        return body


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll until true; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def api_settings(database_url: str) -> Settings:
    """API settings on a database holding both sites and every asset of FLEET."""
    settings = make_settings(database_url)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        ids = {site: create_site(api, site)["id"] for site in SITES}
        for site, asset in FLEET:
            create_asset(api, ids[site], code=asset)
    return settings


@pytest.fixture
def run_shards(tmp_path: Path) -> Iterator[Callable[..., list[AnalyticsProcess]]]:
    """Starts analytics processes (environment settings, one data_dir each); stops them after."""
    started: list[AnalyticsProcess] = []

    def start(common: dict[str, str], *shards: dict[str, str]) -> list[AnalyticsProcess]:
        for n, env in enumerate(shards):
            data_dir = str(tmp_path / f"shard-{n}")
            process = AnalyticsProcess(
                tmp_path / f"shard-{n}.log",
                {**common, **env, "EQUIPMON_ANALYTICS__DATA_DIR": data_dir},
            )
            started.append(process)
            process.start()
        return started

    yield start
    for process in started:
        process.stop()


@pytest.mark.parametrize(
    "shards",
    [
        pytest.param(
            (
                {"EQUIPMON_ANALYTICS__SHARD__SITES": "plant-a"},
                {"EQUIPMON_ANALYTICS__SHARD__SITES": "plant-b"},
            ),
            id="by-site",
        ),
        pytest.param(
            (
                {"EQUIPMON_ANALYTICS__SHARD__COUNT": "2", "EQUIPMON_ANALYTICS__SHARD__INDEX": "0"},
                {"EQUIPMON_ANALYTICS__SHARD__COUNT": "2", "EQUIPMON_ANALYTICS__SHARD__INDEX": "1"},
            ),
            id="by-hash",
        ),
    ],
)
def test_two_sharded_processes_score_every_asset_exactly_once(
    shards: tuple[dict[str, str], dict[str, str]],
    influx_client: InfluxClient,
    influx_settings: InfluxSettings,
    api_settings: Settings,
    run_shards: Callable[..., list[AnalyticsProcess]],
) -> None:
    write_fleet(influx_client)
    assert api_settings.service_token is not None
    with serve(create_app(api_settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        common = {
            "EQUIPMON_ANALYTICS__INFLUX__URL": influx_settings.url,
            "EQUIPMON_ANALYTICS__INFLUX__DATABASE": influx_settings.database,
            "EQUIPMON_ANALYTICS__INFLUX__API": "v1",
            "EQUIPMON_ANALYTICS__API__URL": url,
            "EQUIPMON_ANALYTICS__API__RETRY_MIN_S": "0.05",
            "EQUIPMON_ANALYTICS__SERVICE_TOKEN": api_settings.service_token.get_secret_value(),
            "EQUIPMON_ANALYTICS__TRAIN_AFTER_S": str(BASELINE_S),
            "EQUIPMON_ANALYTICS__LOOKBACK_S": str(ROWS + 600),
            "EQUIPMON_ANALYTICS__TICK_S": "0.5",
        }
        processes = run_shards(common, *shards)
        api = Api(http, api_settings)

        def states() -> dict[tuple[str, str], str]:
            items = api.ok("admin", "GET", "/api/v1/asset-status")
            return {(s["site"], s["asset"]): s["state"] for s in items}

        # Every asset fitted and scored by somebody: the API holds a "normal" status of each.
        wait_for(lambda: states() == dict.fromkeys(FLEET, "normal"), 120, "every asset's status")
        # Each process has finished a tick after that, so its counts are final (the first
        # tick read every row), and it keeps ticking without counting anything again.
        marks = [p.ticks() for p in processes]
        for process, mark in zip(processes, marks, strict=True):
            process.wait_ticks(mark + 2)
        owned = [p.health()["assets"] for p in processes]
        metrics = [p.metrics() for p in processes]
        for process in processes:
            process.stop()  # while the API still answers, so their last posts need no retries
    # Each process scores a part; together they cover the fleet (every status above), and the
    # parts add up to the fleet, so no asset is in both.
    assert all(n > 0 for n in owned), owned
    assert sum(owned) == len(FLEET)
    assert sum(m['equipmon_analytics_assets{phase="scored"}'] for m in metrics) == len(FLEET)
    # Every row of every asset went through exactly one scorer (buffered for its fit or scored).
    rows = sum(
        m["equipmon_analytics_rows_scored_total"] + m["equipmon_analytics_rows_buffered_total"]
        for m in metrics
    )
    assert rows == len(FLEET) * ROWS
    skipped = sum(m["equipmon_analytics_series_skipped_total"] for m in metrics)
    if "EQUIPMON_ANALYTICS__SHARD__SITES" in shards[0]:
        assert skipped == 0  # the InfluxQL read filtered by site: no foreign series arrived
    else:
        assert skipped > 0  # a hash split reads the others' series and drops them unparsed
