"""InfluxDB answering errors for a while (through a fault-injecting proxy): nothing is lost.

Issue 23 point 4 and issue 15 item 10, in compressed time (DESIGN: "time in tests is
compressed"): slow answers near the client's timeout, then 503, 429 with Retry-After, and 500,
each for ``PHASE_S`` under a steady publish. Every point is written exactly once through the
proxy (counted there), and writing resumes within 5 s of the proxy passing requests again even
though the retry backoff may reach 30 s: the writer probes /ping while it waits.
"""

from __future__ import annotations

import threading
import time

from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import T0, Publisher, count_and_sum, wait_for
from tests.collector.influx_proxy import InfluxProxy

PHASE_S = 3.0  # 40 s in the field report; the behaviour does not depend on the length
TIMEOUT_S = 2.0  # the client's request timeout in this test
PHASES = [("slow", PHASE_S), ("503", PHASE_S), ("429", PHASE_S), ("500", PHASE_S)]
RATE = 100  # messages per second, steady
LINES = 5  # readings per message


def _publish_steadily(publisher: Publisher, topic: str, seconds: float) -> int:
    """Publish RATE messages a second for ``seconds``; the number of messages."""
    count = int(seconds * RATE)
    started = time.monotonic()
    for message in range(count):
        pause = started + message / RATE - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # pacing: the steady publish rate, not waiting for an event
        first = message * LINES
        body = "\n".join(f"telemetry v={k} {T0 + k}" for k in range(first, first + LINES))
        publisher.publish(topic, body.encode())
    return count


def test_influxdb_answering_errors_loses_nothing_writes_each_point_once_and_resumes_fast(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    influx_proxy: InfluxProxy,
    topic_prefix: str,
) -> None:
    influx_proxy.slow_s = 0.75 * TIMEOUT_S  # slow, and still within the timeout
    make_collector(
        influx={"url": influx_proxy.url, "timeout_s": TIMEOUT_S},
        # A long cap, as in production: without the probe the backoff would reach it.
        writer={"retry_min_s": 0.5, "retry_max_s": 30.0, "probe_interval_s": 1.0},
    )
    topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix, payload_format="lp")
    influx_proxy.start_phases(PHASES)
    passes_at = influx_proxy.passes_since()
    sent: list[int] = []
    load = threading.Thread(
        target=lambda: sent.append(
            _publish_steadily(publisher, topic, sum(s for _, s in PHASES) + 3.0)
        )
    )
    load.start()
    wait_for(lambda: time.monotonic() >= passes_at, 60, "the fault phases to end")

    def writes_after() -> list[float]:
        return [t for t, _ in influx_proxy.writes if t >= passes_at]

    wait_for(lambda: bool(writes_after()), 5.0, "a write within 5 s of the proxy passing")
    first_write_s = min(writes_after()) - passes_at
    load.join(60)
    publisher.flush()
    readings = sent[0] * LINES
    wait_for(lambda: count_and_sum(influx_client)[0] >= readings, 60, "every reading stored")
    assert count_and_sum(influx_client) == (readings, float(sum(range(readings))))
    # Each point written once through the proxy (it counts a write when the answer is back).
    wait_for(lambda: influx_proxy.lines_written >= readings, 10, "the proxy's count")
    assert influx_proxy.lines_written == readings
    for behaviour in ("slow", "503", "429", "500"):
        assert influx_proxy.answered.get(behaviour, 0) > 0, behaviour
    print(
        f"\n{readings} of {readings} readings stored, {influx_proxy.lines_written} lines "
        f"written through the proxy, first write {first_write_s:.2f} s after it passed "
        f"requests again; answered per phase: {influx_proxy.answered}"
    )


def test_a_server_that_answers_ping_but_refuses_writes_keeps_the_backoff(
    make_collector: CollectorFactory,
    publisher: Publisher,
    influx_client: InfluxClient,
    influx_proxy: InfluxProxy,
    topic_prefix: str,
) -> None:
    # The probe ends a wait only after it saw the server not answering: an overloaded InfluxDB
    # that answers /ping is not retried every probe interval (here 0.1 s, 40 chances in 4 s).
    influx_proxy.start_phases([("503w", 4.0)])
    make_collector(
        influx={"url": influx_proxy.url},
        writer={"retry_min_s": 1.0, "retry_max_s": 30.0, "probe_interval_s": 0.1,
                "parallel_requests": 1},
    )  # fmt: skip
    topic = telemetry_topic("plant-a", "pump-01", prefix=topic_prefix, payload_format="lp")
    publisher.publish(topic, f"telemetry v=1 {T0}".encode())
    wait_for(lambda: count_and_sum(influx_client)[0] == 1, 60, "the reading stored")
    assert 0 < influx_proxy.answered.get("503w", 0) <= 10  # writes refused, backing off
    # The proxy counts a write once InfluxDB's answer is back, which may be after the point is
    # already readable: wait for the count, then check it is exactly one.
    wait_for(lambda: influx_proxy.lines_written >= 1, 10, "the proxy's count of the write")
    assert influx_proxy.lines_written == 1
