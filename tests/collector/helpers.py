"""Helpers for collector tests: a windowed QoS 1 publisher, the collector as a process, polling."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stack.process import ManagedProcess, free_port
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings

T0 = 1_795_392_000_000_000_000  # 2026-11-23T00:00:00Z, inside the validation window


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll until true; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


class Publisher:
    """A paho QoS 1 publisher that keeps at most ``window`` messages unacknowledged."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        window: int = 100,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.window = window
        self._cond = threading.Condition()
        self._unacked: set[int] = set()
        self._early: set[int] = set()
        self.acked = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        self.client.reconnect_delay_set(1, 2)
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self.client.on_connect = lambda *_: self.connected.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async(host, port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("publisher could not connect")

    def _on_publish(self, client: Any, userdata: Any, mid: int, *_: Any) -> None:
        with self._cond:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early.add(mid)
            self.acked += 1
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish once the window has room (QoS 1; paho resends after reconnects)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._unacked) < self.window, 120)
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._unacked.add(info.mid)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the broker acknowledged everything."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._unacked, timeout_s):
                raise AssertionError(f"{len(self._unacked)} publishes never acknowledged")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def collector_config(
    path: Path,
    *,
    mqtt_url: str,
    influx: InfluxSettings,
    data_dir: Path,
    prefix: str,
    client_id: str,
    http_port: int = 0,
    **sections: dict[str, Any],
) -> Path:
    """Write a YAML config for one collector and return its path."""
    config: dict[str, Any] = {
        "data_dir": str(data_dir),
        "mqtt": {"url": mqtt_url, "topic_prefix": prefix, "client_id": client_id},
        "influx": {"url": influx.url, "database": influx.database, "api": influx.api},
        "http": {"port": http_port},
        "writer": {"retry_max_s": 2.0, "fatal_retry_s": 2.0},
        "log": {"dead_letter_log_interval_s": 5.0},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path


class CollectorProcess(ManagedProcess):
    """``python -m collector run --config ...`` as a child process, ready once subscribed."""

    name = "collector"

    def __init__(self, config: Path, log_path: Path, http_port: int) -> None:
        super().__init__(log_path)
        self.config = config
        self.http_port = http_port

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "collector", "run", "--config", str(self.config)]

    def is_ready(self) -> bool:
        return scrape(self.http_port).get("equipmon_collector_mqtt_subscribed") == 1


def fetch(url: str) -> str | None:
    """GET a URL's body (any status), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
    except OSError:
        return None


def scrape(port: int) -> dict[str, float]:
    """The collector's metrics as {'name{labels}': value} (empty when it does not answer)."""
    text = fetch(f"http://127.0.0.1:{port}/metrics") or ""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def count_and_sum(client: InfluxClient, field: str = "v") -> tuple[int, float]:
    """How many points have ``field`` and the sum of its values (the checksum)."""
    series = client.query(f'SELECT COUNT("{field}"), SUM("{field}") FROM telemetry')
    if not series or not series[0].values:
        return 0, 0.0
    row = series[0].values[0]
    return int(row[1] or 0), float(row[2] or 0.0)


def new_port() -> int:
    """A free local TCP port."""
    return free_port()


def fill_disk(folder: Path) -> Path:
    """Another process's file, written until the file system has no byte left; its path."""
    ballast = folder / "ballast"
    with ballast.open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    out.write(b"\1" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    assert os.statvfs(folder).f_bavail == 0
    return ballast
