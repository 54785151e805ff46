"""A new kind of source is one class and one registry entry: written only against the source
shape (``collector.sources.base``), it gets the spool, dead letters, metrics and health that
MQTT and the serial sources have, without a line of the service knowing it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from collector.errors import ConfigError
from collector.settings import CollectorSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import Feed
from collector.sources.registry import KINDS, SourceKind
from telemetry.influx.client import InfluxClient
from telemetry.reading import build_reading
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, count_and_sum, fetch, scrape, wait_for


@dataclass(frozen=True)
class CounterSettings:
    """A made-up protocol's settings section: a device that counts."""

    device: str
    site: str = "plant-a"


class CounterSource:
    """Polls a pretend device: every poll is a reading of its counter, every fourth a bad
    frame; ``unplugged`` makes it stop answering (and unhealthy), as a real link would."""

    kind = "counter"

    def __init__(self, settings: CounterSettings, context: SourceContext) -> None:
        self.name = f"counter:{settings.device}"
        self.feed: Feed = context.open_feed(self.name, self.kind, None)
        self._settings = settings
        self._spawn = context.spawn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.unplugged = threading.Event()
        self.timeouts = 0

    def start(self) -> None:
        self._thread = self._spawn(self.name, self._run, self._stop)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            if self.unplugged.is_set():
                self.timeouts += 1
                continue
            n = self.polls
            self.polls += 1
            if n % 4 == 3:
                self.feed.reject("bad_crc", f"poll {n}: the answer failed its CRC", b"\x01\x03\xff")
            else:
                reading = build_reading(site=self._settings.site, asset=self._settings.device,
                                        time_ns=T0 + n, sensors={"count": float(n)})  # fmt: skip
                self.feed.put([reading])
            self.feed.flush()

    def stop(self) -> None:
        self.feed.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def close(self) -> None:
        pass

    def health(self) -> SourceHealth:
        down = self.unplugged.is_set()
        return SourceHealth(
            healthy=not down,
            problem=f"{self.name}: not answering" if down else "",
            detail={"polls": self.polls},
            errors={"no_response": self.timeouts},
        )


def counter_kind(*devices: str) -> SourceKind:
    return SourceKind(
        "counter", lambda _settings: [CounterSettings(d) for d in devices], CounterSource
    )


def _health(port: int) -> dict[str, object]:
    import json

    body = fetch(f"http://127.0.0.1:{port}/healthz")
    assert body is not None
    document: dict[str, object] = json.loads(body)
    return document


def test_a_new_source_kind_gets_spool_dead_letters_metrics_and_health(
    make_collector: CollectorFactory, influx_client: InfluxClient
) -> None:
    service = make_collector(source_kinds=(*KINDS, counter_kind("cnt-01")))
    source = next(s for s in service.sources if isinstance(s, CounterSource))
    assert service.http is not None
    port = service.http.port
    name = "counter:cnt-01"
    wait_for(lambda: source.polls >= 40, 20, "40 polls")
    source.unplugged.set()
    # Once a poll went unanswered the reader polls no more (a poll under way when the plug
    # was pulled may still have counted): only then are its counts final.
    wait_for(lambda: source.timeouts > 0, 10, "an unanswered poll")
    polls = source.polls
    good = sum(1 for n in range(polls) if n % 4 != 3)
    wait_for(lambda: count_and_sum(influx_client, "count")[0] == good, 20, "readings stored")
    wait_for(lambda: _health(port)["status"] == "unhealthy", 10, "unhealthy while unplugged")
    health = _health(port)
    metrics = scrape(port)

    assert count_and_sum(influx_client, "count") == (
        good,
        float(sum(n for n in range(polls) if n % 4 != 3)),
    )
    letters = service.spool.dead_letters(1000)
    assert len(letters) == polls - good
    assert {(d.reason, d.topic, d.payload) for d in letters} == {("bad_crc", name, b"\x01\x03\xff")}
    assert metrics[f'equipmon_collector_readings_total{{source="{name}"}}'] == good
    assert metrics[f'equipmon_collector_source_messages_total{{source="{name}"}}'] == polls
    key = f'equipmon_collector_source_dead_letters_total{{reason="bad_crc",source="{name}"}}'
    assert metrics[key] == polls - good
    assert metrics[f'equipmon_collector_source_up{{kind="counter",source="{name}"}}'] == 0
    assert (
        metrics[f'equipmon_collector_source_errors_total{{error="no_response",source="{name}"}}']
        > 0
    )
    assert f"{name}: not answering" in health["problems"]  # type: ignore[operator]
    report = health["sources"][name]  # type: ignore[index]
    assert report["kind"] == "counter"
    assert report["readings"] == good
    assert report["polls"] == polls

    source.unplugged.clear()
    wait_for(lambda: _health(port)["status"] == "ok", 10, "healthy again")
    assert scrape(port)[f'equipmon_collector_source_up{{kind="counter",source="{name}"}}'] == 1


def test_two_sources_with_one_name_are_a_configuration_error(
    make_collector: CollectorFactory,
) -> None:
    with pytest.raises(ConfigError, match="two sources named counter:twice"):
        make_collector(source_kinds=(*KINDS, counter_kind("twice", "twice")))


def test_the_collector_settings_configure_mqtt_and_each_serial_port() -> None:
    settings = CollectorSettings(
        serial=[
            {"protocol": "ascii", "url": "/dev/ttyUSB0", "site": "a"},
            {"protocol": "modbus", "url": "/dev/ttyUSB1", "site": "a", "devices": []},
            {"protocol": "ascii", "url": "/dev/ttyUSB2", "site": "a"},
        ]
    )
    sections = {kind.name: kind.sections(settings) for kind in KINDS}
    assert [s.url for s in sections["ascii"]] == ["/dev/ttyUSB0", "/dev/ttyUSB2"]
    assert [s.url for s in sections["modbus"]] == ["/dev/ttyUSB1"]
    assert [s.client_id for s in sections["mqtt"]] == [settings.client_id]
