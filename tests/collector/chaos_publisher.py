"""A publisher process for the chaos test: N readings with unique timestamps, v = reading index.

Run as ``python -m tests.collector.chaos_publisher --host H --port P --prefix X --count N``.
Messages cycle through JSON single readings, JSON batches and line protocol, with a bad message
(each payload its own) after every ``--bad-every`` of them; publishes are windowed (QoS 1) and
paced so the faults the test injects happen while data flows. Prints
``DONE <readings> <messages> <seconds> <bad messages>`` once the broker acknowledged everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from tests.collector.helpers import T0, Publisher

ASSETS = 10
STEP_NS = 1000


def messages(prefix: str, count: int, bad_every: int = 0) -> list[tuple[str, bytes, int]]:
    """(topic, payload, readings) covering reading indexes 0..count-1 exactly once, and a bad
    message (0 readings: a wrong type, or an unknown topic) after every ``bad_every``."""
    out: list[tuple[str, bytes, int]] = []
    i = 0
    kind = 0
    while i < count:
        size = (1, 10, 5)[kind % 3]
        size = min(size, count - i)
        idx = list(range(i, i + size))
        site = "plant-a"
        if kind % 3 == 0:
            n = idx[0]
            asset = f"asset-{n % ASSETS}"
            body = {"time": T0 + n * STEP_NS, "sensors": {"v": float(n), "t": 20.5}}
            out.append((f"{prefix}/{site}/{asset}/telemetry", json.dumps(body).encode(), 1))
        elif kind % 3 == 1:
            records = [
                {
                    "asset": f"asset-{n % ASSETS}",
                    "time": T0 + n * STEP_NS,
                    "sensors": {"v": float(n)},
                }
                for n in idx
            ]
            payload = json.dumps({"readings": records}).encode()
            out.append((f"{prefix}/{site}/gw-{kind % 4}/telemetry", payload, size))
        else:
            lines = "\n".join(
                f"telemetry,asset=asset-{n % ASSETS} v={float(n)!r},t=21.25 {T0 + n * STEP_NS}"
                for n in idx
            )
            out.append((f"{prefix}/{site}/gw-lp/telemetry/lp", lines.encode(), size))
        i += size
        kind += 1
        if bad_every and kind % bad_every == 0:
            bad = kind // bad_every
            if bad % 2:
                payload = json.dumps({"sensors": {"v": f"bad-{bad}"}}).encode()
                out.append((f"{prefix}/{site}/asset-0/telemetry", payload, 0))
            else:
                out.append((f"{prefix}/{site}/gw-0/status", f"status {bad}".encode(), 0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="readings per second")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--bad-every", type=int, default=0, help="a bad message after every N")
    args = parser.parse_args()
    plan = messages(args.prefix, args.count, args.bad_every)
    pub = Publisher(args.host, args.port, f"chaos-pub-{uuid.uuid4().hex[:8]}", window=args.window)
    started = time.monotonic()
    sent = 0
    for topic, payload, readings in plan:
        pub.publish(topic, payload)
        sent += readings
        ahead = sent / args.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)  # pacing: a device fleet publishing at its rate
    pub.flush(timeout_s=120)
    pub.close()
    bad = sum(1 for _, _, readings in plan if not readings)
    print(f"DONE {sent} {len(plan)} {time.monotonic() - started:.1f} {bad}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
