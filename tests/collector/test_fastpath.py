"""The collector's intake gives the same results through the fast codec and the general path
(the codec itself: tests/telemetry/test_fastpath.py)."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt

from collector.intake import Intake
from collector.settings import MqttSettings
from collector.sources.mqtt import make_client
from collector.sources.paho_fast import FastClient
from collector.spool import DeadLetter, SpoolEntry

NOW = 1_795_392_000_000_000_000


def test_intake_results_do_not_depend_on_the_path() -> None:
    """The first message on a topic takes the general path, later ones the fast path."""
    intake = Intake(prefix="p", clock_ns=lambda: NOW)
    payload = json.dumps({"time": NOW, "sensors": {"v": 2.5}}).encode()
    first, second = (intake.process("p/s1/a1/telemetry", payload) for _ in range(2))
    assert isinstance(first, SpoolEntry)
    assert isinstance(second, SpoolEntry)
    assert first.body == second.body == b"telemetry,asset=a1,site=s1 v=2.5 " + str(NOW).encode()
    bad = intake.process("p/s1/a1/telemetry", b'{"time": 1, "sensors": {"v": NaN}}')
    assert isinstance(bad, DeadLetter)
    assert bad.reason == "non_finite"


def test_the_fast_path_setting_forces_stock_paho_and_the_general_codec() -> None:
    """mqtt.fast_path false: the stock paho client and no fast codec, with the same results."""
    assert isinstance(make_client(MqttSettings()), FastClient)
    stock = make_client(MqttSettings(fast_path=False))
    assert type(stock) is mqtt.Client
    payloads = [json.dumps({"time": NOW + i, "sensors": {"v": i / 3}}).encode() for i in range(5)]
    topics = ["p/s1/a1/telemetry"] * len(payloads)
    fast = Intake(prefix="p", clock_ns=lambda: NOW)
    general = Intake(prefix="p", clock_ns=lambda: NOW, fast_codec=False)
    fast.process_many(topics, payloads)  # learn the topic: the next burst is all fast
    assert general.process_many(topics, payloads) == fast.process_many(topics, payloads)
