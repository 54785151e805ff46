"""The payload shapes README.md and docs/device_sims.md document, as bench/ingest.py sends them.

Each shape carries the same readings (8 sensors of the same values, one per asset and time) as
the bare shape of its family, so that a shape's figures beside the bare one's show only what
the shape costs: ``single_bare`` is the ``{"time": <ns>, "sensors": {...}}`` message the
collector's own benchmark used, ``gateway_bare`` a 100-reading batch with ns times.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from telemetry.timeutil import format_rfc3339_ns

SENSORS = ["vibration_rms", "bearing_temp", "motor_current", "voltage", "pressure", "flow",
           "speed", "ambient"]  # fmt: skip
T0 = 1_795_392_000_000_000_000
PREFIX = "bench"
SITE = "plant-a"
GATEWAY_READINGS = 100

Body = Callable[[int, Any, int, dict[str, float]], Any]  # (message, asset(s), time ns, sensors)


def _lp_line(asset: str | None, time_ns: int, sensors: dict[str, float], tags: bool) -> str:
    fields = ",".join(f"{k}={v!r}" for k, v in sensors.items())
    series = f"telemetry,asset={asset},site={SITE}" if tags else "telemetry"
    return f"{series} {fields} {time_ns}"


# Single readings: one message per reading, topic .../<asset>/telemetry[/lp].
SINGLES: dict[str, Body] = {
    "single_bare": lambda m, a, t, s: {"time": t, "sensors": s},
    "single_site_asset": lambda m, a, t, s: {"site": SITE, "asset": a, "time": t, "sensors": s},
    "single_rfc3339": lambda m, a, t, s: {"time": format_rfc3339_ns(t), "sensors": s},
    # README's example as it stands: site, asset, RFC 3339 time and quality in the body.
    "single_readme": lambda m, a, t, s: {
        "site": SITE,
        "asset": a,
        "time": format_rfc3339_ns(t),
        "sensors": s,
        "quality": "good",
    },
    "single_precision_ms": lambda m, a, t, s: {
        "time": t // 10**6,
        "precision": "ms",
        "sensors": s,
    },
    "single_quality": lambda m, a, t, s: {
        "time": t,
        "sensors": s,
        "quality": ("good", "uncertain")[m % 2],
    },
    "single_line_protocol": lambda m, a, t, s: _lp_line(None, t, s, tags=False),
}

# Gateway batches of 100 readings (one per asset), topic .../gw-<n>/telemetry[/lp].
_PRECISION = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9}


def _batch(precision: str, rfc: bool = False, mixed: bool = False) -> Body:
    factor = _PRECISION[precision]

    def record(k: int, a: str, t: int, s: dict[str, float]) -> dict[str, Any]:
        out: dict[str, Any] = {"asset": a, "time": format_rfc3339_ns(t) if rfc else t // factor}
        if mixed:  # quality on some records, fewer sensors on others
            out["sensors"] = s if k % 3 else dict(list(s.items())[:4])
            if k % 2:
                out["quality"] = ("good", "uncertain", "bad")[k % 3]
        else:
            out["sensors"] = s
        return out

    def body(m: int, records: Any, _t: int, _s: dict[str, float]) -> Any:
        envelope: dict[str, Any] = {"site": SITE} if precision != "ns" or rfc or mixed else {}
        if precision != "ns":
            envelope["precision"] = precision
        envelope["readings"] = [record(k, a, t, s) for k, (a, t, s) in enumerate(records)]
        return envelope

    return body


GATEWAYS: dict[str, Body] = {
    "gateway_bare": _batch("ns"),
    "gateway_precision_ms": _batch("ms"),  # README's batch: site and precision in the envelope
    "gateway_precision_us": _batch("us"),
    "gateway_precision_s": _batch("s"),
    "gateway_rfc3339": _batch("ns", rfc=True),
    "gateway_mixed_quality": _batch("ns", mixed=True),
    "gateway_line_protocol": lambda m, r, t, s: "\n".join(
        _lp_line(a, tt, ss, tags=True) for a, tt, ss in r
    ),
}
SHAPES = [*SINGLES, *GATEWAYS]


def readings_per_message(shape: str) -> int:
    return 1 if shape in SINGLES or shape == "single" else GATEWAY_READINGS


def shape_payloads(shape: str, messages: int, part: int, parts: int) -> list[tuple[str, bytes]]:
    """This publisher's share of a shape's messages (the same readings for every shape)."""
    rng = random.Random(part)
    lp = shape.endswith("line_protocol")
    suffix = "telemetry/lp" if lp else "telemetry"
    out = []
    for m in range(part, messages, parts):
        if shape in SINGLES:
            # Whole seconds apart, so that s and ms precisions keep every reading distinct.
            time_ns = T0 + m * 10**9 + (m % 1000) * 10**6
            sensors = {s: round(rng.uniform(0, 100), 3) for s in SENSORS}
            asset = f"asset-{m % 50:03d}"
            body = SINGLES[shape](m, asset, time_ns, sensors)
            topic = f"{PREFIX}/{SITE}/{asset}/{suffix}"
        else:
            records = [(f"asset-{k:03d}", T0 + m * 10**9 + (m % 1000) * 10**6,
                        {s: round(rng.uniform(0, 100), 3) for s in SENSORS})
                       for k in range(GATEWAY_READINGS)]  # fmt: skip
            body = GATEWAYS[shape](m, records, 0, {})
            topic = f"{PREFIX}/{SITE}/gw-{m % 10}/{suffix}"
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        out.append((topic, payload))
    return out
