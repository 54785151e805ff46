"""Supervised threads (issue 15 item 7): a writer lane or the committer that dies is logged,
restarted with backoff, counted in /metrics, and holds /healthz unhealthy while it is down.

The fault is injected into the collaborator each thread calls: the spool's ``delete`` for the
writer lanes (the ``SpoolError`` the issue saw end a lane), ``append`` for the committer (an
unexpected error, not the disk-full or I/O errors the committer handles itself).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from collector.errors import SpoolError
from collector.service import CollectorService
from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, fetch, wait_for

MESSAGES = 200


def _health(service: CollectorService) -> tuple[bool, dict[str, Any]]:
    assert service.http is not None
    body = fetch(f"http://127.0.0.1:{service.http.port}/healthz")
    assert body is not None
    document: dict[str, Any] = json.loads(body)
    return not document["problems"], document


def _restarts(service: CollectorService, prefix: str) -> float:
    total = 0.0
    for metric in service.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "equipmon_collector_thread_restarts_total" and sample.labels[
                "thread"
            ].startswith(prefix):
                total += sample.value
    return total


@pytest.mark.parametrize(
    ("thread", "method", "error"),
    [
        ("influx-writer", "delete", SpoolError("injected: spool delete failed")),
        ("spool-committer", "append", RuntimeError("injected: a bug in the commit path")),
    ],
)
def test_a_thread_that_dies_is_restarted_counted_and_unhealthy_while_down(
    *,  # keyword-only: pytest fills them by name
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    thread: str,
    method: str,
    error: Exception,
) -> None:
    service = make_collector(supervise={"restart_min_s": 0.1, "restart_max_s": 0.5,
                                        "healthy_after_s": 1.0})  # fmt: skip
    fault = threading.Event()
    fault.set()
    real = getattr(service.spool, method)

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if fault.is_set():
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(service.spool, method, faulty)
    topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix)
    for i in range(MESSAGES):
        publisher.publish(topic, json.dumps({"time": T0 + i, "sensors": {"v": float(i)}}).encode())

    wait_for(lambda: not _health(service)[0], 5, "healthz unhealthy within 5 s")
    problems = _health(service)[1]["problems"]
    assert any(thread in p and "injected" in p for p in problems), problems
    wait_for(lambda: _restarts(service, thread) >= 2, 10, "restarts (the fault persists)")

    fault.clear()  # the fault goes away: the restarted thread carries on
    wait_for(lambda: _health(service)[0], 10, "healthz healthy again")
    wait_for(lambda: count_and_sum(influx_client)[0] >= MESSAGES, 30, "every reading stored")
    assert count_and_sum(influx_client) == (MESSAGES, float(sum(range(MESSAGES))))
    wait_for(lambda: service.spool.rows == 0, 10, "the spool drained")
