"""Against the real influxd: writes and reads are exact to the nanosecond, for awkward names."""

from __future__ import annotations

import random

from telemetry.codecs.line_protocol import decode_line_protocol
from telemetry.influx.client import InfluxClient
from telemetry.reading import Reading, now_ns

AWKWARD = [
    "pump 1",
    "fan,2",
    "chiller=3",
    'conveyor "4"',
    "valve '5'",
    "Lüfter-ß",
    "насос",
    "ポンプ",
]


def awkward_fleet(count: int) -> list[tuple[str, str]]:
    sites = ["plant a", "hôtel, east", "site=3"]
    return [(sites[i % 3], f"{AWKWARD[i % len(AWKWARD)]} #{i}") for i in range(count)]


def test_20k_readings_for_50_awkward_assets_round_trip_exactly(
    influx_client: InfluxClient,
) -> None:
    rng = random.Random(20261127)
    sensors = ["vibration rms", "temp,°C", "flow=l/min", 'amps "A"', "Druck ü"]
    start = now_ns() - 3600 * 10**9
    written: list[Reading] = []
    for index, (site, asset) in enumerate(awkward_fleet(50)):
        t = start + index
        # 400 each: 20,000 readings, four write batches and a read of several of InfluxDB's
        # 10,000-point chunks (100,000 took most of a minute on a loaded machine, testing no more).
        for _ in range(400):
            t += rng.randrange(1, 50_000_000)  # irregular, nanosecond-resolution steps
            values = {
                name: rng.choice(
                    [rng.uniform(-1e6, 1e6), rng.random() * 1e-12, float(rng.randrange(100))]
                )
                for name in rng.sample(sensors, 3)
            }
            written.append(Reading(site, asset, t, values))
    for offset in range(0, len(written), 5_000):
        influx_client.write_readings(written[offset : offset + 5_000])

    read_back = influx_client.read_readings()

    assert len(read_back) == 20_000
    key = lambda r: (r.site, r.asset, r.time_ns)  # noqa: E731
    assert sorted(read_back, key=key) == sorted(written, key=key)


def test_read_filters_by_site_asset_and_time(influx_client: InfluxClient) -> None:
    base = now_ns() - 10**9
    readings = [Reading("s", a, base + i, {"x": float(i)}) for i in range(10) for a in ("a'1", "b")]
    influx_client.write_readings(readings)
    got = influx_client.read_readings(site="s", asset="a'1", start_ns=base + 2, end_ns=base + 5)
    assert [(r.asset, r.time_ns, r.values) for r in got] == [
        ("a'1", base + i, {"x": float(i)}) for i in (2, 3, 4)
    ]


def test_rewriting_the_same_point_is_idempotent(influx_client: InfluxClient) -> None:
    t = now_ns()
    body = f"telemetry,asset=a,site=s x=1.5 {t}\n".encode()
    influx_client.write_lines(body)
    influx_client.write_lines(body)
    assert influx_client.read_readings() == [Reading("s", "a", t, {"x": 1.5})]


def test_quality_is_stored_beside_the_values(influx_client: InfluxClient) -> None:
    t = now_ns()
    (reading,) = decode_line_protocol(f'telemetry,site=s,asset=a x=1,quality="bad" {t}')
    influx_client.write_readings([reading])
    assert influx_client.read_readings() == [Reading("s", "a", t, {"x": 1.0}, "bad")]


def test_server_generation_is_read_from_ping(influx_client: InfluxClient) -> None:
    assert influx_client.server_version().startswith("1.6")
    auto = InfluxClient(influx_client.settings.model_copy(update={"api": "auto"}))
    assert auto.uses_v2_write() is False
