"""Fixtures for collector tests: in-process collectors on this test's topic prefix and database."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.sources.mqtt import ClientFactory, make_client
from collector.sources.registry import KINDS, SourceKind
from telemetry.influx.settings import InfluxSettings
from tests.collector.helpers import Publisher
from tests.collector.influx_proxy import InfluxProxy

CollectorFactory = Callable[..., CollectorService]


@pytest.fixture
def make_collector(
    mosquitto: Any, influx_settings: InfluxSettings, topic_prefix: str, tmp_path: Path
) -> Iterator[CollectorFactory]:
    """Build and start in-process collectors; each is stopped after the test."""
    started: list[CollectorService] = []

    def factory(
        name: str = "c1",
        *,
        client_factory: ClientFactory = make_client,
        source_kinds: Sequence[SourceKind] = KINDS,
        **sections: dict[str, Any],
    ) -> CollectorService:
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / name),
            "mqtt": {
                "url": mosquitto.url,
                "topic_prefix": topic_prefix,
                "client_id": f"collector-{name}-{uuid.uuid4().hex[:8]}",
            },
            "influx": influx_settings.model_dump(),
            "http": {"port": 0},
            "writer": {"retry_min_s": 0.2, "retry_max_s": 1.0, "fatal_retry_s": 1.0},
            "shutdown_flush_s": 2.0,
        }
        for key, extra in sections.items():
            if isinstance(values.get(key), dict):
                values[key] = {**values[key], **extra}
            else:
                values[key] = extra
        service = CollectorService(
            CollectorSettings(**values), client_factory=client_factory, source_kinds=source_kinds
        )
        service.start()
        started.append(service)
        # Publishing before the SUBACK would race the subscription (messages with no subscriber).
        assert service.source.subscribed.wait(10), "collector did not subscribe"
        return service

    yield factory
    for service in started:
        service.stop(flush_s=0)


@pytest.fixture
def publisher(mosquitto: Any) -> Iterator[Publisher]:
    """A windowed QoS 1 publisher."""
    pub = Publisher(mosquitto.host, mosquitto.port, f"pub-{uuid.uuid4().hex[:8]}")
    yield pub
    pub.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs file systems that really fill (root only); unmounted after the test.

    Ask for it before ``make_collector`` so that the collectors stop before the unmount.
    """
    mounts: list[Path] = []

    def mount(size: str = "12m") -> Path:
        if os.geteuid() != 0:
            # Never a silent skip: the full-disk guarantee is only shown on a disk that fills.
            pytest.fail("a file system that really fills needs a tmpfs mount: run as root")
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            check=True,
        )
        mounts.append(where)
        return where

    yield mount
    for where in reversed(mounts):
        subprocess.run(["umount", "--lazy", str(where)], check=False)


@pytest.fixture
def influx_proxy(influxdb: Any) -> Iterator[InfluxProxy]:
    """A fault-injecting, counting proxy in front of the test's InfluxDB."""
    proxy = InfluxProxy(influxdb.url)
    yield proxy
    proxy.close()
