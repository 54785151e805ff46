"""The OPC UA source against a real asyncua server process (device_sims' controller).

200 monitored items at 1 s; the server killed for 20 s and restarted: the subscriptions come
back by themselves and the gap is reported; a Bad value is never a reading; an Uncertain one
is stored with its quality; with Basic256Sha256 and a wrong password the source says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from collector.opcua.settings import OpcUaServerSettings
from collector.sources.feed import Feed
from collector.sources.opcua import OpcUaSource
from collector.spool import DeadLetter, SpoolEntry
from telemetry.codecs.line_protocol import decode_line_protocol
from tests.collector.helpers import new_port, wait_for
from tests.collector.opcua_server import OpcUaServerProcess


class Gathered:
    """What the source hands to the committer, decoded back into readings."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[SpoolEntry] = []

    def submit(self, items: Sequence[SpoolEntry | DeadLetter], tokens: Sequence[object]) -> None:
        with self.lock:
            self.entries.extend(i for i in items if isinstance(i, SpoolEntry))

    def readings(self) -> list[Any]:
        with self.lock:
            bodies = [e.body for e in self.entries]
        return [r for body in bodies for r in decode_line_protocol(body)]


@pytest.fixture
def gathered() -> Gathered:
    return Gathered()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OpcUaServerProcess]:
    process = OpcUaServerProcess(
        tmp_path / "opcua.log",
        new_port(),
        "--assets", "25", "--sensors", "8",
        "--bad", "machine-01.flow", "--uncertain", "machine-02.flow",
    )  # fmt: skip
    process.start()
    yield process
    process.stop()


def _source(url: str, gathered: Gathered, tmp_path: Path, **extra: Any) -> OpcUaSource:
    settings = OpcUaServerSettings.model_validate(
        {
            "name": "plc-1",
            "url": url,
            "site": "plant-a",
            "groups": [{"browse": "2:plant-a", "sampling_interval_ms": 1000}],
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 2.0,
            **extra,
        }
    )
    return OpcUaSource(settings, cast(Feed, gathered), data_dir=tmp_path)  # it only submits


@pytest.mark.slow
def test_200_items_survive_a_20_s_server_outage_and_bad_values_are_not_readings(
    server: OpcUaServerProcess, gathered: Gathered, tmp_path: Path
) -> None:
    source = _source(server.url, gathered, tmp_path)
    source.start()
    try:
        wait_for(lambda: len(gathered.readings()) >= 75, 30, "three scans of 25 machines")
        assert source.status.items == 200
        health = source.health()
        assert health.healthy
        details = health.detail
        readings = gathered.readings()
        assert {r.asset for r in readings} == {f"machine-{i:02d}" for i in range(1, 26)}
        assert all("flow" not in r.values for r in readings if r.asset == "machine-01")
        assert details["instrument_trouble"] == ["ns=2;s=plant-a.machine-01.flow"]
        uncertain = [r for r in readings if r.asset == "machine-02" and "flow" in r.values]
        assert uncertain
        assert {r.quality for r in uncertain} == {"uncertain"}  # its own reading, marked

        server.kill()
        wait_for(lambda: not source.health().healthy, 15, "the source to notice the lost server")
        assert source.health().detail["error"]
        before = len(gathered.readings())
        time.sleep(20)  # pacing: the fault timeline, 20 s without a server
        server.start()
        wait_for(lambda: source.status.gaps == 1, 30, "the subscriptions to come back")
        wait_for(lambda: len(gathered.readings()) >= before + 50, 30, "readings after the gap")
        health = source.health()
        assert health.healthy
        details = health.detail
        assert details["monitored_items"] == 200
        assert details["last_gap_s"] >= 20
    finally:
        source.stop()


def test_a_wrong_password_on_a_secured_server_shows_on_health(tmp_path: Path) -> None:
    process = OpcUaServerProcess(
        tmp_path / "opcua.log", new_port(), "--assets", "1", "--sensors", "2",
        "--security", "basic256sha256", "--user", "operator", "--cert-dir", str(tmp_path / "srv"),
        password="right",
    )  # fmt: skip
    process.start()
    gathered = Gathered()
    wrong = _source(
        process.url, gathered, tmp_path / "wrong",
        security="basic256sha256", username="operator", password="wrong",
    )  # fmt: skip
    right = _source(
        process.url, gathered, tmp_path / "right",
        security="basic256sha256", username="operator", password="right",
    )  # fmt: skip
    wrong.start()
    right.start()
    try:
        wait_for(lambda: wrong.status.error is not None, 30, "the refused login to be reported")
        health = wrong.health()
        assert not health.healthy
        assert "UserAccessDenied" in health.problem
        wait_for(lambda: right.status.readings > 0, 30, "readings over the secured channel")
        assert right.health().healthy
    finally:
        wrong.stop()
        right.stop()
        process.stop()
