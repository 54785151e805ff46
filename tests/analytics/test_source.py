"""The tick's InfluxDB read: new points per asset as arrays, against a real InfluxDB."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from analytics.source import InfluxWindows
from telemetry.influx.client import InfluxClient


@pytest.fixture
def t0() -> int:
    """Ten minutes ago, whole seconds: inside the first fetch's 15 minutes. (A module constant
    was set at collection and fell out of that window when the test ran late in a long run.)"""
    return (time.time_ns() // 10**9 - 600) * 10**9


def windows(client: InfluxClient) -> InfluxWindows:
    """A reader whose first fetch covers the last 15 minutes."""
    return InfluxWindows(client, lookback_s=900, lateness_s=30, clock_ns=time.time_ns)


def test_points_come_back_per_asset_in_time_order_with_gaps_as_nan(
    influx_client: InfluxClient, t0: int
) -> None:
    # Written out of order; pump-2 lacks "flow" in one point and has a quality string.
    influx_client.write_lines(
        (
            f"telemetry,site=s,asset=pump-1 flow=1.5,temp=20 {t0 + 2 * 10**9}\n"
            f"telemetry,site=s,asset=pump-1 flow=1.0,temp=21 {t0}\n"
            f'telemetry,site=s,asset=pump-2 flow=3.0,quality="good" {t0}\n'
            f"telemetry,site=s,asset=pump-2 temp=30 {t0 + 10**9}\n"
        ).encode()
    )
    reader = windows(influx_client)
    got = reader.fetch()
    one, two = got[("s", "pump-1")], got[("s", "pump-2")]
    assert one.times_ns.tolist() == [t0, t0 + 2 * 10**9]
    assert one.sensors == ("flow", "temp")
    assert one.values.tolist() == [[1.0, 21.0], [1.5, 20.0]]
    assert two.sensors == ("flow", "temp")
    assert two.values[0, 0] == 3.0
    assert math.isnan(two.values[0, 1])
    assert math.isnan(two.values[1, 0])
    assert two.values[1, 1] == 30.0
    # Nothing new: nothing handed out again, though the read re-covers the lateness span.
    assert reader.fetch() == {}
    influx_client.write_lines(f"telemetry,site=s,asset=pump-1 flow=2.0 {t0 + 3 * 10**9}\n".encode())
    again = reader.fetch()
    assert list(again) == [("s", "pump-1")]
    assert again[("s", "pump-1")].sensors == ("flow",)


def test_a_field_that_is_not_a_number_is_no_sensor(influx_client: InfluxClient, t0: int) -> None:
    influx_client.write_lines(
        (
            f'telemetry,site=s,asset=pump-3 flow=1.0,note="ok",running=true {t0}\n'
            f'telemetry,site=s,asset=pump-3 flow=2.0,note="ok",running=false {t0 + 10**9}\n'
        ).encode()
    )
    window = windows(influx_client).fetch()[("s", "pump-3")]
    assert window.sensors == ("flow",)
    np.testing.assert_array_equal(window.values, [[1.0], [2.0]])
