"""The first run's small parts: the --history option and what the banner says about analytics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_sims.cli import _parser as device_sims_parser
from stack.__main__ import main
from stack.first_run import Scoring, describe_scoring, inject_command, parse_duration_s
from stack.supervisor import StackOptions, _device_sims_command


def test_history_durations() -> None:
    assert [parse_duration_s(t) for t in ("6h", "1d", "90m", "30s", "45", "0")] == [
        21600.0, 86400.0, 5400.0, 30.0, 45.0, 0.0,
    ]  # fmt: skip
    for bad in ("six hours", "-1h", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_duration_s(bad)
    with pytest.raises(SystemExit):
        main(["--history", "soon"])  # argparse names the option


def test_the_banner_says_what_analytics_does_and_offers_a_waiting_inject() -> None:
    found = Scoring(15, 22, fitting=["pump-02", "pump-03"], learning=["plc-01"])
    (line,) = describe_scoring(found)
    assert "scoring 15 of 22 assets" in line
    assert "2 more being fitted on their history" in line
    assert line.endswith("learning from live data: plc-01")
    assert describe_scoring(None) == ["  Analytics:    not answering yet (see its log)"]
    command = inject_command("http://127.0.0.1:4000", "http://127.0.0.1:9102")
    assert command.startswith(".venv/bin/python -m device_sims inject pump-01 bearing_wear")
    assert "--ramp 2m" in command
    assert command.endswith("--analytics http://127.0.0.1:9102 --wait")


def test_a_gateway_token_that_starts_with_a_dash_reaches_the_simulators(tmp_path: Path) -> None:
    # secrets.token_urlsafe starts with "-" one time in 64: argparse took it for an option and
    # the simulators exited at start-up (seen in CI).
    (tmp_path / "tokens.json").write_text(
        json.dumps({"admin": "a", "service": "s", "gateway": "-starts-with-a-dash"})
    )
    command = _device_sims_command(StackOptions(data_dir=tmp_path), "mqtt://127.0.0.1:1884")
    assert command[:2] == ["-m", "device_sims"]
    args = device_sims_parser().parse_args(command[2:])
    assert args.token == "-starts-with-a-dash"
