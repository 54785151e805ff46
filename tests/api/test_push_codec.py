"""The gateway push decodes with telemetry's fast codec, stores what the general path would, and
keeps its guarantees: every documented shape lands exactly once, a bad batch is a 422 that
names the record and stores nothing (against a real InfluxDB)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from telemetry import FastCodec, Reading, decode_json, decode_line_protocol, format_rfc3339_ns
from telemetry.influx.client import InfluxClient
from tests.api.helpers import Api

# SQLite only (readings go to InfluxDB; the asset lookup is plain SQLAlchemy).
pytestmark = pytest.mark.sql_agnostic

PUSH = "/api/v1/readings"
MS = 10**6


def documents(now: int) -> list[dict[str, Any]]:
    """The JSON shapes README.md documents for a push (each its own times)."""
    sensors = {"vibration_rms": 2.31, "bearing_temp": 45}
    return [
        {"site": "plant-a", "precision": "ms", "readings": [
            {"asset": a, "time": now // MS - k, "sensors": sensors} for k, a in
            enumerate(["pump-01", "fan-02"] * 250)]},
        {"readings": [{"asset": "pump-01", "time": format_rfc3339_ns(now - 10**9 * k),
                       "sensors": sensors, **({"quality": "uncertain"} if k % 3 else {})}
                      for k in range(1, 301)]},
        {"precision": "s", "readings": [
            {"asset": "fan-02", "time": now // 10**9 - 1000 - k, "sensors": {"current": 11.8}}
            for k in range(100)]},
        {"readings": [{"asset": "fan-02", "time": now // 1000 - 5000 - k, "precision": "us",
                       "sensors": {"current": 1.5 + k}} for k in range(3)]},
    ]  # fmt: skip


def key(reading: Reading) -> tuple[str, str, int]:
    return reading.site, reading.asset, reading.time_ns


def test_documented_shapes_land_as_the_general_path_reads_them(
    influx_api: Api, influx_client: InfluxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[int] = []
    for name in ("convert", "convert_lines"):
        original = getattr(FastCodec, name)

        def spy(self: FastCodec, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            out = _original(self, *args, **kwargs)
            taken.append(out is not None)
            return out

        monkeypatch.setattr(FastCodec, name, spy)
    now = time.time_ns()
    expected: list[Reading] = []
    for document in documents(now):
        body = json.dumps(document).encode()
        response = influx_api.call(
            "gateway", "POST", PUSH, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        expected += decode_json(body, site="plant-a")
    lp = "\n".join(
        f'telemetry,asset=pump-01,host=gw,site=plant-a temp={20 + k},quality="good" '
        f"{now // 10**9 - 2000 - k}"
        for k in range(50)
    )
    response = influx_api.call(
        "gateway", "POST", f"{PUSH}?precision=s", content=lp,
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"written": 50}
    expected += decode_line_protocol(lp, precision="s", site="plant-a")
    assert taken == [True] * 5  # every push went through the fast codec
    stored = {key(r): r for r in influx_client.read_readings(site="plant-a")}
    assert len(stored) == len(expected) == 953
    for reading in expected:
        assert stored[key(reading)] == reading


def test_a_bad_batch_is_named_and_nothing_is_stored(
    influx_api: Api, influx_client: InfluxClient
) -> None:
    """The fast codec declines; the general path words the 422; nothing reaches InfluxDB."""
    now = time.time_ns()
    good = {"asset": "pump-01", "time": format_rfc3339_ns(now), "sensors": {"v": 1.5}}
    cases = [
        ([good, {**good, "time": "2026-02-30T00:00:00Z"}], "readings[1].time", "bad_time"),
        ([good, {**good, "precision": "h"}], "readings[1].precision", "unknown_precision"),
        ([good, good, {**good, "asset": "ghost"}], "readings[2]", "unknown_asset"),
        ([good, {**good, "quality": "fine"}], "readings[1].quality", "bad_quality"),
        ([{"asset": "pump-01", "sensors": {"v": 1.5}}], "readings[0].time", "missing_field"),
        ([{"time": now, "sensors": {"v": 1.5}}], "readings[0].asset", "missing_field"),
    ]
    for records, where, reason in cases:
        response = influx_api.call("gateway", "POST", PUSH, json={"readings": records})
        assert response.status_code == 422, (records, response.text)
        problem = response.json()
        assert (problem["where"], problem["reason"]) == (where, reason)
    lp = f"telemetry,asset=pump-01 v=1.5 {now}\ntelemetry,asset=ghost v=1.5 {now}"
    response = influx_api.call(
        "gateway", "POST", PUSH, content=lp, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422
    assert (response.json()["where"], response.json()["reason"]) == ("point 2", "unknown_asset")
    assert influx_client.read_readings(site="plant-a") == []
