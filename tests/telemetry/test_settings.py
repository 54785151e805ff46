"""The settings namespace: each service's names, the old names for one release, masking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from analytics.settings import ServiceSettings
from api.settings import Settings as ApiSettings
from collector.settings import CollectorSettings, load_settings
from telemetry.settings import EquipmonSettings, explain, leaves, origins
from telemetry.settings_show import MASK, is_secret_name, rows

SERVICES: tuple[type[EquipmonSettings], ...] = (CollectorSettings, ServiceSettings, ApiSettings)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EQUIPMON_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_every_name_is_in_its_service_namespace_and_no_new_name_is_an_old_one() -> None:
    old = {leaf.legacy for cls in SERVICES for leaf in leaves(cls)}
    for cls in SERVICES:
        names = [leaf.name for leaf in leaves(cls)]
        assert all(name.startswith(cls.env_prefix()) for name in names), cls
        assert len(names) == len(set(names)), cls
        # A new name that some service read before would be read twice in a shared environment.
        assert not old.intersection(names), sorted(old.intersection(names))
    assert CollectorSettings.env_name("mqtt.url") == "EQUIPMON_COLLECTOR__MQTT__URL"
    assert ServiceSettings.env_name("api.url") == "EQUIPMON_ANALYTICS__API__URL"
    assert ApiSettings.env_name("api.port") == "EQUIPMON_API__SERVER__PORT"


def test_new_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUIPMON_COLLECTOR__MQTT__URL", "mqtt://broker:1884")
    monkeypatch.setenv("EQUIPMON_COLLECTOR__HTTP__PORT", "9201")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__API__URL", "http://api.example:8080")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__HTTP_PORT", "9202")
    monkeypatch.setenv("EQUIPMON_ANALYTICS__SHARD__SITES", "plant-a,plant-b")
    monkeypatch.setenv("EQUIPMON_API__SERVER__PORT", "9203")
    monkeypatch.setenv("EQUIPMON_API__POLICY__DUE_HOURS", '{"1": 2}')
    collector = CollectorSettings()
    assert (collector.mqtt.url, collector.http.port) == ("mqtt://broker:1884", 9201)
    analytics = ServiceSettings()
    assert (analytics.api.url, analytics.http_port) == ("http://api.example:8080", 9202)
    assert analytics.shard.sites == ["plant-a", "plant-b"]
    api = ApiSettings()
    assert (api.api.port, api.policy.due_hours) == (9203, {1: 2})
    # One service's names are nothing to another.
    assert ApiSettings().influx.url == CollectorSettings().influx.url == "http://127.0.0.1:8086"


def test_an_old_name_still_works_and_warns_with_its_new_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EQUIPMON_HTTP__PORT", "9301")  # the collector's, before the namespace
    monkeypatch.setenv("EQUIPMON_HTTP_PORT", "9302")  # analytics'
    monkeypatch.setenv("EQUIPMON_API__PORT", "9303")  # the API's
    with pytest.warns(DeprecationWarning, match="EQUIPMON_HTTP__PORT is deprecated: rename it to "
                      "EQUIPMON_COLLECTOR__HTTP__PORT"):  # fmt: skip
        assert CollectorSettings().http.port == 9301
    assert "rename it to EQUIPMON_COLLECTOR__HTTP__PORT" in caplog.text
    with pytest.warns(DeprecationWarning, match="rename it to EQUIPMON_ANALYTICS__HTTP_PORT"):
        assert ServiceSettings().http_port == 9302
    with pytest.warns(DeprecationWarning, match="rename it to EQUIPMON_API__SERVER__PORT"):
        assert ApiSettings().api.port == 9303


def test_the_new_name_wins_over_the_old_and_the_warning_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EQUIPMON_MQTT__URL", "mqtt://old:1883")
    monkeypatch.setenv("EQUIPMON_COLLECTOR__MQTT__URL", "mqtt://new:1883")
    with pytest.warns(DeprecationWarning, match="EQUIPMON_MQTT__URL") as caught:
        settings = CollectorSettings()
    assert settings.mqtt.url == "mqtt://new:1883"
    [warning] = caught
    assert str(warning.message).startswith(
        "EQUIPMON_MQTT__URL is deprecated and ignored: EQUIPMON_COLLECTOR__MQTT__URL is set too "
        "and wins"
    )
    found = origins(CollectorSettings)[("mqtt", "url")]
    assert (found.kind, found.name) == ("env", "EQUIPMON_COLLECTOR__MQTT__URL")


def test_database_url_is_a_conventional_name_below_the_api_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///conventional.db")
    assert ApiSettings().database_url == "sqlite:///conventional.db"  # no warning (errors here)
    monkeypatch.setenv("EQUIPMON_API__DATABASE_URL", "sqlite:///own.db")
    assert ApiSettings().database_url == "sqlite:///own.db"
    monkeypatch.delenv("EQUIPMON_API__DATABASE_URL")
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("EQUIPMON_DATABASE_URL", "sqlite:///old.db")
    with pytest.warns(DeprecationWarning, match="rename it to EQUIPMON_API__DATABASE_URL"):
        assert ApiSettings().database_url == "sqlite:///old.db"


def test_environment_beats_the_file_and_the_file_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("mqtt:\n  client_id: from-file\n  url: mqtt://file:1883\n")
    monkeypatch.setenv("EQUIPMON_COLLECTOR__MQTT__URL", "mqtt://env:1883")
    settings = load_settings(config)
    assert (settings.mqtt.url, settings.mqtt.client_id) == ("mqtt://env:1883", "from-file")
    shown = {row["setting"]: row for row in rows(settings, {"mqtt": {"client_id": "x"}}, "c.yaml")}
    assert (shown["mqtt.client_id"]["source"], shown["mqtt.client_id"]["from"]) == (
        "file",
        "c.yaml",
    )
    assert shown["mqtt.url"]["source"] == "env"
    assert (shown["mqtt.keepalive_s"]["source"], shown["mqtt.keepalive_s"]["from"]) == (
        "default",
        None,
    )


def test_a_list_that_is_not_json_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUIPMON_COLLECTOR__SERIAL", "not json")
    with pytest.raises(SettingsError, match=r"EQUIPMON_COLLECTOR__SERIAL must be JSON"):
        CollectorSettings()


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_secret_name("token")
    assert is_secret_name("admin_token")
    assert is_secret_name("password")
    assert is_secret_name("api_key")
    assert not is_secret_name("key_file")
    assert not is_secret_name("keepalive_s")
    monkeypatch.setenv("EQUIPMON_API__DATABASE_URL", "postgresql://equipmon:hunter2@db:5432/x")
    monkeypatch.setenv("EQUIPMON_API__ADMIN_TOKEN", "admin-0123456789abcdef")
    monkeypatch.setenv("EQUIPMON_API__INFLUX__USERNAME", "reader")
    shown = {row["setting"]: row["value"] for row in rows(ApiSettings())}
    assert shown["admin_token"] == MASK
    assert shown["service_token"] is None  # unset stays visible as unset
    assert shown["database_url"] == f"postgresql+psycopg://equipmon:{MASK}@db:5432/x"
    assert shown["influx.username"] == "reader"
    assert "hunter2" not in str(shown)
    assert "0123456789abcdef" not in str(shown)


def test_an_invalid_setting_names_its_variable_and_not_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EQUIPMON_API__ADMIN_TOKEN", "short-secret")
    monkeypatch.setenv("EQUIPMON_API__SERVER__PORT", "eighty")
    with pytest.raises(ValidationError) as caught:
        ApiSettings()
    text = explain(ApiSettings, caught.value)
    assert "admin_token (EQUIPMON_API__ADMIN_TOKEN): Value error, bootstrap tokens" in text
    assert "api.port (EQUIPMON_API__SERVER__PORT): Input should be a valid integer" in text
    assert "short-secret" not in text
