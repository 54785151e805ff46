"""The spool (durability across reopen, bounds, totals) and settings (file, env, precedence)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.errors import ConfigError
from collector.intake import Intake
from collector.settings import CollectorSettings, load_settings
from collector.spool import DeadLetter, Spool, SpoolEntry


def _entry(i: int, topic: str | None = None) -> SpoolEntry:
    body = f"telemetry,asset=a,site=s v={i}.0 {i}".encode()
    return SpoolEntry(f"t{i}" if topic is None else topic, body, 1, i)


def test_spool_survives_reopen_and_reads_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    for i in range(10):  # ten group commits: ten rows
        spool.append([_entry(i)])
    spool.close()
    spool = Spool(tmp_path / "s.sqlite")
    assert (spool.rows, spool.readings) == (10, 10)
    batch = spool.read_batch(max_readings=4, max_bytes=10_000)
    assert [r.received_ns for r in batch] == [0, 1, 2, 3]
    spool.delete(batch, written=4)
    assert spool.rows == 6
    assert spool.read_batch(100, 40)[0].received_ns == 4  # byte limit, but at least one row
    assert len(spool.read_batch(100, 40)) == 1
    assert spool.totals() == {"messages_spooled": 10, "readings_spooled": 10, "readings_written": 4}
    spool.close()


def test_a_group_shares_rows_up_to_the_batch_limits_and_keeps_each_lines_topic(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "s.sqlite", row_max_readings=4)
    topics = ["x", "x", "y", "x", "y", "y"]
    spool.append([_entry(i, topic) for i, topic in enumerate(topics)])
    assert (spool.rows, spool.readings) == (2, 6)  # 4 + 2 readings
    first, second = spool.read_batch(100, 10_000)
    assert first.body.split(b"\n") == [_entry(i).body for i in range(4)]  # arrival order
    assert first.topics() == ["x", "x", "y", "x"]
    assert (second.topics(), second.readings, second.received_ns) == (["y", "y"], 2, 4)
    assert spool.bytes == len(first.body) + len(second.body)
    assert spool.totals() == {"messages_spooled": 6, "readings_spooled": 6}
    spool.close()


def test_a_spool_from_before_line_topics_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.execute(
        "CREATE TABLE spool (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, body BLOB NOT NULL,"
        " readings INTEGER NOT NULL, received_ns INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO spool VALUES (1, 'old', ?, 1, 7)", (_entry(7).body,))
    db.commit()
    db.close()
    spool = Spool(tmp_path / "old.sqlite")
    spool.append([_entry(8, "new")])
    old, new = spool.read_batch(100, 10_000)
    assert (old.topics(), new.topics()) == (["old"], ["new"])
    spool.close()


def test_dead_letters_are_bounded_and_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", dead_letter_max=5, dead_letter_payload_bytes=8)
    spool.append(
        [], [DeadLetter(i, "invalid_json", "x", "t", b"0123456789", 10) for i in range(12)]
    )
    letters = spool.dead_letters(100)
    assert [d.received_ns for d in letters] == [11, 10, 9, 8, 7]
    assert letters[0].payload == b"01234567"
    assert letters[0].payload_size == 10
    assert spool.totals()["dead_letters:invalid_json"] == 12
    spool.close()


def test_intake_uses_receipt_time_only_when_the_payload_has_none() -> None:
    intake = Intake(prefix="p", clock_ns=lambda: 1_795_392_000_000_000_000)
    with_time = intake.process(
        "p/s/a/telemetry", b'{"time": 1795391000000000000, "sensors": {"v": 1}}'
    )
    without = intake.process("p/s/a/telemetry", b'{"sensors": {"v": 1}}')
    assert isinstance(with_time, SpoolEntry)
    assert isinstance(without, SpoolEntry)
    assert with_time.body.endswith(b" 1795391000000000000")
    assert without.body.endswith(b" 1795392000000000000")


def test_settings_file_env_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[mqtt]\nurl = "mqtt://broker:1884"\nclient_id = "from-file"\n'
        '[influx]\nurl = "http://db:8086"\n[spool]\nmax_bytes = 4096\n'
    )
    monkeypatch.setenv("EQUIPMON_COLLECTOR__MQTT__URL", "mqtts://env-broker:8883")
    monkeypatch.setenv("EQUIPMON_COLLECTOR__INFLUX__DATABASE", "envdb")
    monkeypatch.setenv("EQUIPMON_COLLECTOR__DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(config)
    assert settings.mqtt.url == "mqtts://env-broker:8883"  # env beats file
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("env-broker", 8883, True)
    assert settings.mqtt.client_id == "from-file"  # file beats default, sections merge
    assert (settings.influx.url, settings.influx.database) == ("http://db:8086", "envdb")
    assert settings.spool.max_bytes == 4096
    assert settings.spool_path == tmp_path / "d" / "collector" / "spool.sqlite"
    yaml_config = tmp_path / "c.yaml"
    yaml_config.write_text("mqtt:\n  protocol: '3.1.1'\n")
    assert load_settings(yaml_config).mqtt.protocol == "3.1.1"


def test_settings_errors_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"mqtt\.url"):
        CollectorSettings(mqtt={"url": "http://nope"})
    with pytest.raises(ValidationError, match="max_bytes"):
        CollectorSettings(spool={"max_bytes": 1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
