"""``inject`` asks analytics whether the asset is scored yet: a fault injected while it learns
would become part of its normal, so inject warns (with when it will be scored) or waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.service import DetectorService
from analytics.settings import ServiceSettings
from device_sims.cli import main
from device_sims.fleet import TransportOptions
from device_sims.runner import Runner, RunOptions
from device_sims.scenario import load_scenario
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.analytics.test_service_lifecycle import Plant

SCENARIO = """\
name: inject
seed: 3
sites:
  plant-a: {utc_offset_h: 0, mean_c: 10, daily_amp_c: 3, indoor: true}
assets:
  - {name: pump-a, site: plant-a, type: pump, interval: 10s}
"""


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Runner]:
    """A live simulation's control API (the simulation itself need not run)."""
    path = tmp_path / "inject.yaml"
    path.write_text(SCENARIO)
    runner = Runner(
        load_scenario(path),
        RunOptions(mode="realtime", control_port=0, use_transports=False),
        TransportOptions(),
    )
    runner.start()
    yield runner
    runner.close()


def test_inject_warns_while_the_asset_learns_and_injects_once_it_is_scored(
    control: Runner,
    influx_client: InfluxClient,
    influx_settings: InfluxSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plant = Plant(influx_client, ("pump-a",), age_s=400)
    plant.write(100)
    settings = ServiceSettings(
        influx=influx_settings, train_after_s=300, lookback_s=4000, http_port=0,
        data_dir=tmp_path / "analytics", status_posts=False,
    )  # fmt: skip
    with DetectorService(settings, poster=lambda _body: None) as service:
        service.start(pollers=False)
        service.tick()
        analytics = f"http://127.0.0.1:{service.http_port}"
        inject = ["inject", "pump-a", "bearing_wear", "--ramp", "2m"]
        inject += ["--control", control.endpoints["control"], "--analytics", analytics]

        assert main(inject) == 1
        warning = capsys.readouterr().err
        assert "still learning pump-a's normal behaviour" in warning
        assert "UTC at the latest" in warning
        assert "--wait" in warning
        assert control.sim.faults == []  # nothing injected
        assert main([*inject, "--wait", "--wait-max", "1s"]) == 2
        assert "still not scored" in capsys.readouterr().err
        assert main(["inject", "ghost", "bearing_wear", "--analytics", analytics]) == 1
        assert "has not seen ghost yet" in capsys.readouterr().err

        plant.write(300)
        service.tick()  # fitted: scored from here on
        assert main([*inject, "--wait"]) == 0
        assert '"kind": "bearing_wear"' in capsys.readouterr().out
        assert [f.asset for f in control.sim.faults] == ["pump-a"]


def test_inject_goes_ahead_with_a_warning_when_analytics_cannot_be_asked(
    control: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = "http://127.0.0.1:9"  # the discard port: nothing answers
    args = ["inject", "pump-a", "bearing_wear", "--control", control.endpoints["control"]]
    assert main([*args, "--analytics", unreachable]) == 0
    assert "could not be asked" in capsys.readouterr().err
    assert len(control.sim.faults) == 1
    assert main([*args, "--analytics", unreachable, "--force"]) == 0
    assert len(control.sim.faults) == 2
