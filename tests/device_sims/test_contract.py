"""The simulator's payloads decode with equipmon's own codecs (the wire contract both sides share).

device_sims itself imports nothing of ours; this test does, to catch drift between the two.
"""

from __future__ import annotations

from device_sims.engine import Sample
from device_sims.formats import json_batch, json_single, line_protocol_batch
from telemetry.codecs.json_codec import decode_json
from telemetry.codecs.line_protocol import decode_line_protocol

T0 = 1_795_392_000_123_456_789
SAMPLES = [
    Sample("plant-a", "pump-01", T0, {"vibration_rms": 2.31, "bearing_temp": 45.2}),
    Sample("plant-a", "pump-02", T0 + 10**9, {"vibration_rms": 1.0, "bearing_temp": -3.5}),
]


def test_json_single_decodes_with_ns_time() -> None:
    (reading,) = decode_json(json_single(SAMPLES[0]), now=T0)
    assert (reading.site, reading.asset, reading.time_ns) == ("plant-a", "pump-01", T0)
    assert reading.values == SAMPLES[0].sensors


def test_json_batch_decodes_with_ms_precision() -> None:
    readings = decode_json(json_batch("plant-a", SAMPLES), now=T0)
    assert [r.asset for r in readings] == ["pump-01", "pump-02"]
    assert [r.time_ns for r in readings] == [s.time_ns // 10**6 * 10**6 for s in SAMPLES]


def test_line_protocol_decodes() -> None:
    readings = decode_line_protocol(line_protocol_batch(SAMPLES), now=T0)
    assert [(r.asset, r.time_ns, r.values) for r in readings] == [
        (s.asset, s.time_ns, s.sensors) for s in SAMPLES
    ]
