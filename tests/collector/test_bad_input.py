"""Hostile and malformed messages interleaved with good ones: good stored, bad dead-lettered."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, wait_for

FAR_FUTURE = T0 + 400 * 86400 * 10**9 * 1000  # a ms timestamp sent as µs-ish: centuries ahead


def _bad_messages(prefix: str) -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload) for every kind of bad input we guard against."""
    j = telemetry_topic("plant-a", "pump-01", prefix=prefix)
    lp = telemetry_topic("plant-a", "pump-01", "lp", prefix=prefix)
    return [
        ("invalid_json", j, b'{"sensors": {"v": 1.0'),
        ("wrong_type", j, json.dumps({"time": T0, "sensors": {"v": "hot"}}).encode()),
        ("wrong_type", j, json.dumps({"time": T0, "sensors": {"v": True}}).encode()),
        ("wrong_type", j, b"42"),
        ("non_finite", j, b'{"time": 1, "sensors": {"v": NaN}}'),
        ("non_finite", j, b'{"sensors": {"v": 1e999}}'),
        ("payload_too_large", j, b'{"sensors": {"v": 1.0}, "pad": "' + b"x" * 10_000_000 + b'"}'),
        ("invalid_utf8", j, b'{"sensors": {"v\xff\xfe": 1.0}}'),
        ("invalid_utf8", lp, b"telemetry v=1.0 \xc3\x28"),
        ("bad_escape", lp, b"telemetry v\\q=1.0 1795392000000000000"),
        ("unknown_topic", f"{prefix}//pump-01/telemetry", b'{"sensors": {"v": 1.0}}'),
        ("time_out_of_range", j, json.dumps({"time": FAR_FUTURE, "sensors": {"v": 1.0}}).encode()),
        ("empty_batch", j, b'{"readings": []}'),
        ("empty_batch", j, b"[]"),
        ("empty_batch", lp, b""),
        ("missing_field", j, b'{"time": 1795392000000000000}'),
        ("empty_sensors", j, b'{"sensors": {}}'),
        ("bad_quality", j, b'{"sensors": {"v": 1.0}, "quality": "excellent"}'),
        ("site_mismatch", j, b'{"site": "plant-z", "sensors": {"v": 1.0}}'),
        ("bad_name", j, b'{"sensors": {"time": 1.0}}'),
        ("unknown_measurement", lp, b"cpu v=1.0 1795392000000000000"),
        ("invalid_json", j, b"[" * 200_000),
        ("batch_too_large", j, json.dumps([{"sensors": {"v": 1.0}}] * 10_001).encode()),
        ("bad_line_protocol", lp, b"telemetry v=1.0 notatime"),
    ]


def test_bad_input_is_dead_lettered_and_good_input_stored(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
) -> None:
    service = make_collector(log={"dead_letter_log_interval_s": 60.0})
    bad = _bad_messages(topic_prefix)
    good_topic = telemetry_topic("plant-a", "pump-02", prefix=topic_prefix)
    good = 0
    for i, (_, topic, payload) in enumerate(bad):
        for k in range(3):  # good messages before and after every bad one
            n = 3 * i + k
            body = {"time": T0 + n, "sensors": {"v": float(n)}}
            publisher.publish(good_topic, json.dumps(body).encode())
            good += 1
        publisher.publish(topic, payload)
    publisher.flush()

    expected_sum = float(sum(range(good)))
    wait_for(lambda: count_and_sum(influx_client)[0] >= good, 30, f"{good} good readings")
    assert count_and_sum(influx_client) == (good, expected_sum)
    wait_for(lambda: len(service.spool.dead_letters(100)) >= len(bad), 10, "every dead letter")
    letters = list(reversed(service.spool.dead_letters(100)))
    assert [(d.reason, d.topic) for d in letters] == [(r, t) for r, t, _ in bad]
    for letter, (_, _, payload) in zip(letters, bad, strict=True):
        assert letter.payload_size == len(payload)
        assert letter.payload == payload[: service.settings.spool.dead_letter_payload_bytes]
    assert len({r for r, _, _ in bad}) >= 12  # at least twelve distinct kinds
    assert service.source.connected.is_set()
    metrics = service.metrics.registry
    for reason in {r for r, _, _ in bad}:
        expected = sum(1 for r, _, _ in bad if r == reason)
        assert (
            metrics.get_sample_value(
                "equipmon_collector_messages_rejected_total", {"reason": reason}
            )
            == expected
        ), reason
    assert metrics.get_sample_value("equipmon_collector_messages_acknowledged_total") == good + len(
        bad
    )

    # The CLI reads the same spool (while the collector runs: WAL readers do not block it).
    env = {**os.environ, "EQUIPMON_COLLECTOR__DATA_DIR": service.settings.data_dir}
    out = subprocess.run(
        [sys.executable, "-m", "collector", "dead-letters", "--limit", "5"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    summary = json.loads(out[0])["dead_letters_by_reason"]
    assert summary["empty_batch"] == 3
    shown = [json.loads(line) for line in out[1:]]
    assert [s["reason"] for s in shown] == [r for r, _, _ in reversed(bad[-5:])]
