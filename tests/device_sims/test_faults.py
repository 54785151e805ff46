"""Every fault mode leaves its documented signature; a healthy twin (same seed) does not."""

from __future__ import annotations

import numpy as np
import pytest

from device_sims.environment import SiteClimate
from device_sims.faults import FAULTS
from device_sims.machines import MACHINE_TYPES
from tests.device_sims.helpers import simulate

WARM = SiteClimate(mean_c=27.0, daily_amp_c=4.0, yearly_amp_c=0.0, indoor=False)


def test_bearing_wear_trends_up_slowly_then_faster() -> None:
    fault = {"kind": "bearing_wear", "onset_h": 12, "ramp_h": 48, "severity": 1.0, "growth": 4.0}
    sick = simulate("pump", 62, [fault])
    twin = simulate("pump", 62)
    # Before onset the twins are the same machine.
    assert sick.mean("vibration_rms", 0, 12) == pytest.approx(twin.mean("vibration_rms", 0, 12))
    early = sick.mean("vibration_rms", 12, 24) - twin.mean("vibration_rms", 12, 24)
    late = sick.mean("vibration_rms", 50, 62) - twin.mean("vibration_rms", 50, 62)
    assert late > 3.0  # mm/s: clearly into ISO 10816 "unsatisfactory"
    assert early < late / 8  # slowly at first, then faster
    assert sick.mean("bearing_temp", 50, 62) - twin.mean("bearing_temp", 50, 62) > 10.0
    assert abs(twin.mean("vibration_rms", 50, 62) - twin.mean("vibration_rms", 12, 24)) < 0.5


def test_repair_returns_the_machine_to_health() -> None:
    fault = {"kind": "bearing_wear", "onset_h": 2, "ramp_h": 12, "severity": 1.0, "end_h": 20}
    sick = simulate("fan", 40, [fault])
    twin = simulate("fan", 40)
    assert sick.mean("vibration_rms", 14, 20) > twin.mean("vibration_rms", 14, 20) + 3.0
    # Two hours after the repair the bearing has cooled and vibration is back to normal.
    after = (22, 40)
    assert sick.mean("vibration_rms", *after) == pytest.approx(
        twin.mean("vibration_rms", *after), rel=0.1
    )
    assert sick.mean("bearing_temp", *after) == pytest.approx(
        twin.mean("bearing_temp", *after), abs=1.0
    )


def test_imbalance_raises_vibration_not_temperature() -> None:
    fault = {"kind": "imbalance", "onset_h": 4, "ramp_h": 2, "severity": 0.8}
    sick, twin = simulate("fan", 24, [fault]), simulate("fan", 24)
    assert sick.mean("vibration_rms", 8, 24) > twin.mean("vibration_rms", 8, 24) + 1.0
    assert abs(sick.mean("bearing_temp", 8, 24) - twin.mean("bearing_temp", 8, 24)) < 1.0
    assert sick.mean("airflow", 8, 24) == pytest.approx(twin.mean("airflow", 8, 24), rel=0.02)


def test_misalignment_raises_vibration_gearbox_temperature_and_current() -> None:
    fault = {"kind": "misalignment", "onset_h": 2, "ramp_h": 1, "severity": 1.0}
    sick, twin = simulate("conveyor", 24, [fault]), simulate("conveyor", 24)
    shift = (8, 16)  # Monday day shift: running
    assert sick.mean("vibration_rms", *shift) > twin.mean("vibration_rms", *shift) + 2.0
    assert sick.mean("gearbox_temp", *shift) > twin.mean("gearbox_temp", *shift) + 5.0
    assert sick.mean("motor_current", *shift) > twin.mean("motor_current", *shift)


def test_cavitation_drops_suction_and_shakes_the_pump() -> None:
    fault = {"kind": "cavitation", "onset_h": 4, "ramp_h": 0.5, "severity": 1.0}
    sick, twin = simulate("pump", 12, [fault]), simulate("pump", 12)
    window = (5, 12)
    assert sick.mean("suction_pressure", *window) < twin.mean("suction_pressure", *window) - 0.2
    assert sick.mean("vibration_rms", *window) > twin.mean("vibration_rms", *window) + 1.5
    assert np.std(np.diff(sick.window("discharge_pressure", *window))) > 3 * np.std(
        np.diff(twin.window("discharge_pressure", *window))
    )
    assert sick.mean("flow", *window) < twin.mean("flow", *window)


def test_overheating_heats_the_motor_beyond_what_load_explains() -> None:
    fault = {"kind": "overheating", "onset_h": 2, "ramp_h": 4, "severity": 1.0}
    sick, twin = simulate("pump", 24, [fault]), simulate("pump", 24)
    assert sick.mean("motor_temp", 10, 24) > twin.mean("motor_temp", 10, 24) + 15.0
    assert sick.mean("motor_current", 10, 24) == pytest.approx(
        twin.mean("motor_current", 10, 24), rel=0.02
    )


def test_compressor_cooling_failure_trips_on_over_temperature() -> None:
    fault = {"kind": "overheating", "onset_h": 2, "ramp_h": 2, "severity": 1.0}
    sick, twin = (
        simulate("compressor", 24, [fault], climate=WARM),
        simulate("compressor", 24, climate=WARM),
    )
    assert sick.mean("oil_temp", 8, 24) > twin.mean("oil_temp", 8, 24) + 15.0
    assert np.min(sick.window("motor_current", 4, 24)) < 1.0  # tripped at least once
    assert np.min(twin.window("motor_current", 4, 24)) > 5.0


def test_pump_leak_lowers_pressure_raises_flow_and_current() -> None:
    fault = {"kind": "leak", "onset_h": 2, "ramp_h": 2, "severity": 1.0}
    sick, twin = simulate("pump", 24, [fault]), simulate("pump", 24)
    w = (6, 24)
    assert sick.mean("discharge_pressure", *w) < twin.mean("discharge_pressure", *w) - 0.2
    assert sick.mean("flow", *w) > twin.mean("flow", *w) * 1.1
    assert sick.mean("motor_current", *w) > twin.mean("motor_current", *w)


def test_compressor_leak_raises_loaded_duty() -> None:
    fault = {"kind": "leak", "onset_h": 2, "ramp_h": 2, "severity": 1.0}
    sick, twin = simulate("compressor", 30, [fault]), simulate("compressor", 30)
    assert sick.mean("loaded_duty", 6, 30) > twin.mean("loaded_duty", 6, 30) + 15.0
    assert sick.mean("motor_current", 6, 30) > twin.mean("motor_current", 6, 30)


def test_clogged_filter_air_handler_fights_then_loses_airflow() -> None:
    fault = {"kind": "clogged_filter", "onset_h": 0, "ramp_h": 30, "severity": 1.0, "growth": 0.0}
    sick, twin = simulate("ahu", 42, [fault]), simulate("ahu", 42)
    day1, day2 = (8, 18), (36, 42)  # Monday office hours, Tuesday afternoon
    assert sick.mean("filter_dp", *day2) > 2.5 * twin.mean("filter_dp", *day2)
    assert sick.mean("vfd_speed", *day1) > twin.mean("vfd_speed", *day1)
    assert sick.mean("fan_current", *day1) > twin.mean("fan_current", *day1)
    assert sick.mean("airflow", *day2) < twin.mean("airflow", *day2) * 0.95


def test_clogged_strainer_starves_the_pump() -> None:
    fault = {"kind": "clogged_filter", "onset_h": 2, "ramp_h": 4, "severity": 1.0}
    sick, twin = simulate("pump", 24, [fault]), simulate("pump", 24)
    w = (8, 24)
    assert sick.mean("suction_pressure", *w) < twin.mean("suction_pressure", *w) - 0.2
    assert sick.mean("flow", *w) < twin.mean("flow", *w) * 0.85
    assert sick.mean("motor_current", *w) < twin.mean("motor_current", *w)


@pytest.mark.parametrize(
    ("machine_type", "driven", "drive", "output"),
    [
        ("fan", "fan_speed", "motor_speed", "airflow"),
        ("conveyor", "belt_speed", "motor_speed", "throughput"),
    ],
)
def test_belt_slip_driven_speed_falls_behind_the_motor(
    machine_type: str, driven: str, drive: str, output: str
) -> None:
    fault = {"kind": "belt_slip", "onset_h": 2, "ramp_h": 2, "severity": 1.0}
    sick, twin = simulate(machine_type, 16, [fault]), simulate(machine_type, 16)
    w = (8, 16)
    ratio_sick = np.nanmean(sick.window(driven, *w) / np.maximum(sick.window(drive, *w), 1))
    ratio_twin = np.nanmean(twin.window(driven, *w) / np.maximum(twin.window(drive, *w), 1))
    assert ratio_sick < ratio_twin * 0.95
    assert sick.mean(output, *w) < twin.mean(output, *w)
    assert sick.mean("motor_current", *w) < twin.mean("motor_current", *w)
    assert np.std(sick.window(driven, *w) / np.maximum(sick.window(drive, *w), 1)) > 3 * np.std(
        twin.window(driven, *w) / np.maximum(twin.window(drive, *w), 1)
    )


def test_stuck_sensor_stays_constant_while_neighbours_move() -> None:
    fault = {"kind": "stuck", "sensor": "bearing_temp", "onset_h": 4, "end_h": 20}
    sick = simulate("pump", 24, [fault])
    stuck = sick.window("bearing_temp", 4, 20)
    assert len(set(stuck.tolist())) == 1
    assert np.ptp(sick.window("motor_temp", 4, 20)) > 2.0  # the correlated neighbour moves
    assert np.ptp(sick.window("vibration_rms", 4, 20)) > 0.2
    assert len(set(sick.window("bearing_temp", 20, 24).tolist())) > 5  # repaired


def test_drift_grows_linearly_on_one_sensor_only() -> None:
    fault = {"kind": "drift", "sensor": "winding_temp", "onset_h": 2, "severity": 1.0}
    sick, twin = simulate("fan", 48, [fault]), simulate("fan", 48)
    offset = sick.window("winding_temp", 2, 48) - twin.window("winding_temp", 2, 48)
    hours = sick.t_h[(sick.t_h >= 2) & (sick.t_h < 48)]
    assert np.corrcoef(hours, offset)[0, 1] > 0.99
    assert offset[-1] > 5.0
    for name in ("bearing_temp", "motor_current", "vibration_rms"):
        assert np.array_equal(sick.values[name], twin.values[name])


def test_spikes_are_isolated_outliers() -> None:
    fault = {"kind": "spikes", "sensor": "discharge_pressure", "onset_h": 1, "severity": 1.0}
    sick, twin = simulate("pump", 12, [fault]), simulate("pump", 12)
    diff = sick.window("discharge_pressure", 1, 12) - twin.window("discharge_pressure", 1, 12)
    outliers = np.flatnonzero(diff > 5.0)
    assert 5 <= len(outliers) < 0.1 * len(diff)
    assert np.count_nonzero(diff == 0.0) > 0.9 * len(diff)


def test_asset_dropout_is_silence_and_sensor_dropout_a_missing_key() -> None:
    silent = simulate("conveyor", 6, [{"kind": "dropout", "onset_h": 2, "end_h": 3}])
    assert silent.count == 5 * 60
    assert not np.any((silent.t_h >= 2) & (silent.t_h < 3))
    partial = simulate(
        "conveyor", 6, [{"kind": "dropout", "sensor": "gearbox_temp", "onset_h": 2, "end_h": 3}]
    )
    assert np.all(np.isnan(partial.window("gearbox_temp", 2, 3)))
    assert not np.any(np.isnan(partial.window("motor_temp", 2, 3)))


def test_wrong_scaling_multiplies_one_sensor() -> None:
    fault = {"kind": "wrong_scaling", "sensor": "flow", "onset_h": 1, "params": {"factor": 10.0}}
    sick, twin = simulate("pump", 4, [fault]), simulate("pump", 4)
    ratio = sick.window("flow", 1, 4) / twin.window("flow", 1, 4)
    assert np.allclose(ratio, 10.0, rtol=0.01)
    assert np.array_equal(sick.values["motor_current"], twin.values["motor_current"])


def test_every_fault_kind_is_supported_somewhere() -> None:
    supported = set().union(*(cls.FAULTS for cls in MACHINE_TYPES.values()))
    process = {k for k, v in FAULTS.items() if v.category == "process"}
    assert process == supported
    assert len(MACHINE_TYPES) >= 5
