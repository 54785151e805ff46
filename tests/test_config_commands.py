"""Each service as a real process: its own names work, an old name works and warns, the new name
wins, ``config show`` prints each setting's source with secrets masked, ``--help`` points to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stack.process import free_port
from stack.supervisor import ServiceProcess
from telemetry.influx.settings import InfluxSettings
from tests.collector.helpers import scrape, wait_for
from tests.fixtures.services import Service

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-0123456789abcdef"


def _environment(**settings: str) -> dict[str, str]:
    """Ours without any equipmon setting, plus ``settings``."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("EQUIPMON_") and k != "DATABASE_URL"
    }
    return {**clean, **settings}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    """``config show``'s table: variable -> (value, source)."""
    found = {}
    for line in stdout.splitlines()[2:]:
        variable, value, source = line.split(maxsplit=2)
        found[variable] = (value, source)
    return found


@pytest.mark.parametrize("service", ["collector", "analytics", "api"])
def test_help_lists_config_show_and_the_configuration_page(service: str) -> None:
    out = _run([service, "--help"], _environment())
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "config show" in text
    assert "docs/configuration.md" in text
    assert f"EQUIPMON_{service.upper()}__" in text


def test_collector_config_show_gives_each_source_and_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text("mqtt:\n  client_id: from-file\n  keepalive_s: 40\n")
    env = _environment(
        EQUIPMON_COLLECTOR__MQTT__URL="mqtt://new-broker:1883",
        EQUIPMON_MQTT__URL="mqtt://old-broker:1883",  # the new name wins
        EQUIPMON_COLLECTOR__MQTT__KEEPALIVE_S="50",  # the environment beats the file
        EQUIPMON_COLLECTOR__MQTT__PASSWORD=SECRET,
        EQUIPMON_INFLUX__TOKEN=SECRET,  # an old name, still read
    )
    out = _run(["collector", "--config", str(config), "config", "show"], env)
    assert out.returncode == 0, out.stderr
    table = _table(out.stdout)
    assert table["EQUIPMON_COLLECTOR__MQTT__URL"] == ("mqtt://new-broker:1883", "env")
    assert table["EQUIPMON_COLLECTOR__MQTT__CLIENT_ID"] == ("from-file", f"file {config}")
    assert table["EQUIPMON_COLLECTOR__MQTT__KEEPALIVE_S"] == ("50", "env")
    assert table["EQUIPMON_COLLECTOR__MQTT__PROTOCOL"] == ("5", "default")
    assert table["EQUIPMON_COLLECTOR__MQTT__PASSWORD"] == ("********", "env")
    assert table["EQUIPMON_COLLECTOR__INFLUX__TOKEN"] == (
        "********",
        "deprecated EQUIPMON_INFLUX__TOKEN (rename to EQUIPMON_COLLECTOR__INFLUX__TOKEN)",
    )
    assert SECRET not in out.stdout + out.stderr
    assert (
        "EQUIPMON_INFLUX__TOKEN is deprecated: rename it to EQUIPMON_COLLECTOR__INFLUX__TOKEN"
        in (out.stderr)
    )
    assert "EQUIPMON_MQTT__URL is deprecated and ignored: EQUIPMON_COLLECTOR__MQTT__URL is set" in (
        out.stderr
    )

    shown = _run(["collector", "config", "show", "--json", "--config", str(config)], env)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["service"] == "collector"
    rows = {row["setting"]: row for row in document["settings"]}
    assert rows["mqtt.client_id"]["source"] == "file"
    assert rows["mqtt.password"]["value"] == "********"
    assert rows["influx.token"]["source"] == "deprecated"
    assert rows["influx.token"]["from"] == "EQUIPMON_INFLUX__TOKEN"
    assert rows["influx.token"]["variable"] == "EQUIPMON_COLLECTOR__INFLUX__TOKEN"
    assert SECRET not in shown.stdout


def test_analytics_config_show_as_json(tmp_path: Path) -> None:
    env = _environment(
        EQUIPMON_ANALYTICS__SERVICE_TOKEN=SECRET,
        EQUIPMON_ANALYTICS__API__URL="http://api.example:8080",
        EQUIPMON_HTTP_PORT="9402",  # analytics' name before the namespace
    )
    out = _run(["analytics", "config", "show", "--json"], env)
    assert out.returncode == 0, out.stderr
    rows: dict[str, dict[str, Any]] = {
        row["variable"]: row for row in json.loads(out.stdout)["settings"]
    }
    assert rows["EQUIPMON_ANALYTICS__SERVICE_TOKEN"]["value"] == "********"
    assert rows["EQUIPMON_ANALYTICS__API__URL"]["value"] == "http://api.example:8080"
    assert rows["EQUIPMON_ANALYTICS__API__URL"]["source"] == "env"
    assert rows["EQUIPMON_ANALYTICS__HTTP_PORT"]["value"] == 9402
    assert rows["EQUIPMON_ANALYTICS__HTTP_PORT"]["source"] == "deprecated"
    assert rows["EQUIPMON_ANALYTICS__TICK_S"]["source"] == "default"
    assert SECRET not in out.stdout + out.stderr
    assert "rename it to EQUIPMON_ANALYTICS__HTTP_PORT" in out.stderr


def test_api_config_show_masks_tokens_and_the_database_password() -> None:
    env = _environment(
        DATABASE_URL=f"postgresql://equipmon:{SECRET}@db:5432/equipmon",
        EQUIPMON_API__ADMIN_TOKEN=SECRET,
        EQUIPMON_API__SERVER__PORT="8181",
    )
    out = _run(["api", "config", "show"], env)
    assert out.returncode == 0, out.stderr
    table = _table(out.stdout)
    assert table["EQUIPMON_API__DATABASE_URL"] == (
        "postgresql+psycopg://equipmon:********@db:5432/equipmon",
        "env DATABASE_URL",
    )
    assert table["EQUIPMON_API__ADMIN_TOKEN"] == ("********", "env")
    assert table["EQUIPMON_API__SERVER__PORT"] == ("8181", "env")
    assert SECRET not in out.stdout + out.stderr


def test_collector_process_reads_new_names_old_ones_with_a_warning_new_wins(
    mosquitto: Service, influx_settings: InfluxSettings, tmp_path: Path
) -> None:
    port = free_port()
    env = _environment(
        EQUIPMON_COLLECTOR__MQTT__URL=mosquitto.url,
        EQUIPMON_MQTT__URL="mqtt://127.0.0.1:9",  # old and ignored: the new name wins
        EQUIPMON_COLLECTOR__MQTT__CLIENT_ID=f"settings-{port}",
        EQUIPMON_COLLECTOR__INFLUX__URL=influx_settings.url,
        EQUIPMON_COLLECTOR__INFLUX__DATABASE=influx_settings.database,
        EQUIPMON_COLLECTOR__INFLUX__API="v1",
        EQUIPMON_COLLECTOR__DATA_DIR=str(tmp_path),
        EQUIPMON_HTTP__PORT=str(port),  # old, still read
    )
    log = tmp_path / "collector.log"
    process = ServiceProcess(
        "collector",
        ["-m", "collector"],
        log,
        env,
        lambda: scrape(port).get("equipmon_collector_mqtt_subscribed") == 1,
    )
    process.start()  # subscribed: on the new name's broker, serving on the old name's port
    try:
        text = log.read_text()
        assert "EQUIPMON_HTTP__PORT is deprecated: rename it to EQUIPMON_COLLECTOR__HTTP__PORT" in (
            text
        )
        assert "EQUIPMON_MQTT__URL is deprecated and ignored" in text
    finally:
        process.stop()


def _status(url: str, token: str = "") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_api_process_reads_new_names_and_an_old_one_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    env = _environment(
        EQUIPMON_API__DATABASE_URL=f"sqlite:///{tmp_path / 'api.db'}",
        EQUIPMON_API__ADMIN_TOKEN=SECRET,
        EQUIPMON_API__SERVER__HOST="127.0.0.1",
        EQUIPMON_API__PORT=str(port),  # old, still read
        EQUIPMON_API__INFLUX__URL="http://127.0.0.1:9",
    )
    log = tmp_path / "api.log"
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        "api", ["-m", "api"], log, env, lambda: _status(f"{base}/healthz") == 200
    )
    process.start()
    try:
        assert _status(f"{base}/api/v1/assets", SECRET) == 200  # the new name's admin token
        assert _status(f"{base}/api/v1/assets", "wrong-token-0123456789") == 401
        wait_for(
            lambda: "rename it to EQUIPMON_API__SERVER__PORT" in log.read_text(), 10, "warning"
        )
        assert SECRET not in log.read_text()
    finally:
        process.stop()
