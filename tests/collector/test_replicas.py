"""Replica identity: client id and spool file from the replica name, one process per spool, a
process whose session is taken over gives way, and ``spool.path`` as a folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.errors import SpoolError
from collector.identity import host_replica_name
from collector.service import CollectorService
from collector.settings import CollectorSettings
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import (
    T0,
    CollectorProcess,
    Publisher,
    collector_config,
    count_and_sum,
    new_port,
    scrape,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def test_client_id_and_spool_file_follow_the_replica_name(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    named = CollectorSettings(replica="collector-2", spool={"path": str(folder)})
    assert named.client_id == "equipmon-collector-collector-2"
    assert named.spool_path == folder / "collector-2.sqlite"
    # A folder that does not exist yet says so with a trailing slash.
    later = CollectorSettings(replica="r1", spool={"path": f"{tmp_path}/later/"})
    assert later.spool_path == tmp_path / "later" / "r1.sqlite"
    # Old configs keep working: a file stays a file, an explicit client id stays.
    old = CollectorSettings(spool={"path": str(tmp_path / "s.sqlite")}, mqtt={"client_id": "x"})
    assert (old.spool_path, old.client_id) == (tmp_path / "s.sqlite", "x")
    default = CollectorSettings(data_dir=str(tmp_path))
    assert default.spool_path == tmp_path / "collector" / "spool.sqlite"
    assert default.client_id == f"equipmon-collector-{host_replica_name()}"
    assert host_replica_name("Collector 7.example.org") == "Collector-7"
    with pytest.raises(ValueError, match="replica must be"):
        CollectorSettings(replica="a/b")


def test_a_second_collector_on_one_spool_refuses_at_start(
    make_collector: CollectorFactory, tmp_path: Path
) -> None:
    first = make_collector("same")
    settings = first.settings.model_copy(
        update={"mqtt": first.settings.mqtt.model_copy(update={"client_id": "another-id"})}
    )
    with pytest.raises(SpoolError, match=r"another collector \(pid \d+\) already uses"):
        CollectorService(settings)
    assert first.source.connected.is_set()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQUIPMON_")}
    return {**env, **extra}


def test_spool_path_as_a_folder_starts_and_an_unwritable_one_is_one_line(
    mosquitto: Any, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "volume"
    folder.mkdir()
    port = new_port()
    env = _env(
        EQUIPMON_COLLECTOR__SPOOL__PATH=str(folder),
        EQUIPMON_COLLECTOR__REPLICA="replica-x",
        EQUIPMON_COLLECTOR__MQTT__URL=mosquitto.url,
        EQUIPMON_COLLECTOR__INFLUX__URL=influx_settings.url,
        EQUIPMON_COLLECTOR__INFLUX__DATABASE=influx_settings.database,
        EQUIPMON_COLLECTOR__HTTP__PORT=str(port),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        # Subscribed: started, signal handlers in place (a SIGTERM before is a plain kill).
        wait_for(lambda: scrape(port).get("equipmon_collector_mqtt_subscribed") == 1, 20, "start")
        assert (folder / "replica-x.sqlite").exists()
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env["EQUIPMON_COLLECTOR__SPOOL__PATH"] = f"{blocker}/spool/"
    out = subprocess.run(
        [sys.executable, "-m", "collector"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0
    assert len(lines) == 1, out.stderr
    assert "spool.path" in lines[0]
    assert "EQUIPMON_COLLECTOR__SPOOL__PATH" in lines[0]
    assert str(blocker) in lines[0]


def test_the_older_of_two_with_one_identity_gives_way_and_nothing_is_lost(
    mosquitto: Any,
    influx_settings: InfluxSettings,
    influx_client: InfluxClient,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Same client id, two processes (two hosts): the older is taken over and exits."""
    client_id = f"same-{topic_prefix[-12:]}"
    procs: list[CollectorProcess] = []
    for name in ("old", "new"):
        port = new_port()
        config = collector_config(
            tmp_path / f"{name}.yaml", mqtt_url=mosquitto.url, influx=influx_settings,
            data_dir=tmp_path / name, prefix=topic_prefix, client_id=client_id, http_port=port,
        )  # fmt: skip
        procs.append(CollectorProcess(config, tmp_path / f"{name}.log", port))
    old, new = procs
    publisher = Publisher(mosquitto.host, mosquitto.port, f"pub-{topic_prefix[-12:]}")
    count = 3000
    try:
        old.start()

        def publish(start: int, stop: int) -> None:
            for n in range(start, stop):
                body = {"time": T0 + n * 1000, "sensors": {"v": float(n)}}
                topic = f"{topic_prefix}/plant-a/asset-{n % 7}/telemetry"
                publisher.publish(topic, json.dumps(body).encode())

        publish(0, count // 2)
        new.start()  # takes the session over
        # The acceptance's bound (the older is gone within 5 s of the newer's start).
        wait_for(lambda: not old.is_running(), 5, "the older collector to exit")
        assert old._proc is not None
        assert old._proc.returncode not in (0, None)
        assert f"another client connected as {client_id}" in old.log_path.read_text()
        publish(count // 2, count)
        publisher.flush()
        wait_for(lambda: count_and_sum(influx_client)[0] >= count, 60, f"{count} readings")
        assert count_and_sum(influx_client) == (count, float(sum(range(count))))
        assert new.is_running()
        assert "taken over" not in new.log_path.read_text()
    finally:
        publisher.close()
        for proc in procs:
            proc.stop()
