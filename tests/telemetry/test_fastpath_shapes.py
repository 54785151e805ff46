"""Every payload shape the docs show takes the fast codec, with the general path's bytes.

README.md ("Payload formats") and docs/device_sims.md ("Wire formats") document: `site` and
`asset` in the body or from the transport, RFC 3339 times with an offset and 0-9 fraction
digits, epoch numbers in every `precision`, `quality` on some records, batches of records with
different sensors, top-level arrays. Each must come out of the fast codec (not declined) byte
for byte as `decode_json` → `LineFormatter` writes it; generated variants (times near and far
from valid, precisions, qualities, nulls) must never make the two disagree. The API's push
calls the codec without an asset or a receipt time: records must name theirs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import FastCodec, LineFormatter, Reading, decode_json, format_rfc3339_ns
from telemetry.errors import PayloadError

NOW = 1_795_392_000_000_000_000
MS = 10**6
S = 10**9


def general(payload: bytes, *, asset: str | None, default: int | None) -> bytes | None:
    readings = decoded(payload, asset=asset, default=default)
    return None if readings is None else LineFormatter().lines(readings)


def decoded(payload: bytes, *, asset: str | None, default: int | None) -> list[Reading] | None:
    try:
        return decode_json(payload, site="s1", asset=asset, default_time_ns=default, now=NOW)
    except (PayloadError, TypeError):  # TypeError: an unhashable quality (intake: internal)
        return None


def check(document: Any, *, asset: str | None = "a1", default: int | None = NOW) -> bytes | None:
    """Assert the fast codec agrees with the general path; its body (None: declined)."""
    payload = json.dumps(document).encode()
    named: list[str] = []
    fast = FastCodec().convert(
        payload, site="s1", asset=asset, default_time_ns=default, now=NOW, assets=named
    )
    expected = general(payload, asset=asset, default=default)
    if fast is None:
        return None
    assert expected is not None, f"accepted what the general path rejects: {payload!r}"
    assert fast[0] == expected
    assert fast[1] == len(named) == expected.count(b"\n") + 1
    assert named == [r.asset for r in decoded(payload, asset=asset, default=default) or []]
    return fast[0]


def rfc(ns: int, zone: str = "Z") -> str:
    return format_rfc3339_ns(ns)[:-1] + zone


DOCUMENTED: list[Any] = [
    # README's single reading (RFC 3339, site and asset in the body, quality).
    {"site": "s1", "asset": "pump-01", "time": rfc(NOW - 123), "quality": "good",
     "sensors": {"vibration_rms": 2.31, "bearing_temp": 45.2}},
    {"site": "s1", "asset": "a1", "time": NOW, "sensors": {"v": 1.5}},
    {"asset": "pump-01", "sensors": {"v": 1.5}},  # receipt time
    {"time": rfc(NOW, "+07:00"), "sensors": {"v": 1.5}},
    {"time": rfc(NOW, "-05:30"), "sensors": {"v": 1.5}},
    {"time": "2026-11-22t21:20:00.5z", "sensors": {"v": 1.5}},
    {"time": "2026-11-22 21:20:00Z", "sensors": {"v": 1.5}},
    {"time": "2026-11-22T21:20:00.123Z", "sensors": {"v": 1.5}},
    {"time": NOW // MS, "precision": "ms", "sensors": {"v": 1.5}},
    {"time": NOW / S + 0.25, "precision": "s", "sensors": {"v": 1.5}},
    {"time": NOW // 1000, "precision": "us", "sensors": {"v": 1.5}, "quality": "uncertain"},
    # README's batch: site and precision in the envelope, records of different sensors.
    {"site": "s1", "precision": "ms", "readings": [
        {"asset": "pump-01", "time": NOW // MS + 123, "sensors": {"vibration_rms": 2.31}},
        {"asset": "fan-02", "time": NOW // MS + 123, "sensors": {"current": 11.8}}]},
    *({"precision": p, "readings": [
        {"asset": f"p{k}", "time": NOW // f - k, "sensors": {"v": k + 0.5, "t": 20.25}}
        for k in range(20)]} for p, f in (("ns", 1), ("us", 1000), ("ms", MS), ("s", S))),
    {"readings": [{"asset": f"p{k}", "time": rfc(NOW - k * 7 * S), "sensors": {"v": 0.5}}
                  for k in range(20)]},
    {"readings": [{"asset": f"p{k}", "time": rfc(NOW - k * 10**8 - k), "sensors": {"v": 0.5}}
                  for k in range(20)]},  # fraction digits vary: one by one
    {"readings": [{"asset": "p", "time": NOW - k, "sensors": {"v": 0.5},
                   **({"quality": q} if q else {})}
                  for k, q in enumerate(["good", None, "bad", "uncertain", None] * 4)]},
    {"readings": [{"asset": "p", "time": NOW - k, "sensors": {"v": 0.5}, "quality": None}
                  for k in range(3)]},
    {"precision": "ms", "readings": [
        {"asset": "p", "time": NOW // MS, "sensors": {"v": 0.5}},
        {"asset": "p", "time": NOW // S, "precision": "s", "sensors": {"v": 0.5}}]},
    [{"asset": "p", "time": rfc(NOW), "sensors": {"v": 0.5}},
     {"asset": "q", "time": rfc(NOW), "sensors": {"w": 1.5, "x": 2.5}}],
]  # fmt: skip


@pytest.mark.parametrize("document", DOCUMENTED)
def test_documented_shapes_take_the_fast_path(document: Any) -> None:
    assert check(document) is not None


@pytest.mark.parametrize("document", DOCUMENTED)
def test_documented_shapes_as_the_api_pushes_them(document: Any) -> None:
    """No asset from the transport, no receipt time: what the general path accepts, the fast
    codec takes; what it refuses (missing asset or time), the fast codec declines."""
    agreed = check(document, asset=None, default=None)
    assert (agreed is None) == (general(json.dumps(document).encode(), asset=None, default=None)
                                is None)  # fmt: skip


ODD: list[Any] = [
    {"time": "2026-11-22T21:20:00", "sensors": {"v": 1.0}},  # no offset
    {"time": "2026-11-22T21:20:00.Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:00.1234567891Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:61Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:60Z", "sensors": {"v": 1.0}},  # a leap second: accepted
    {"time": "2026-02-30T21:20:00Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T24:00:00Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:00+24:00", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:00+0700", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:0٣Z", "sensors": {"v": 1.0}},
    {"time": "2026-11-22T21:20:00.٣Z", "sensors": {"v": 1.0}},
    {"time": "1999-11-22T21:20:00Z", "sensors": {"v": 1.0}},  # too old
    {"time": "", "sensors": {"v": 1.0}},
    {"time": 1795392000.5, "precision": "h", "sensors": {"v": 1.0}},
    {"time": 1795392000, "precision": ["s"], "sensors": {"v": 1.0}},
    {"time": 1e300, "precision": "s", "sensors": {"v": 1.0}},
    {"time": True, "precision": "s", "sensors": {"v": 1.0}},
    {"precision": "h", "sensors": {"v": 1.0}},  # checked even without a time
    {"precision": "h", "readings": [{"sensors": {"v": 1.0}}, {"sensors": {"v": 1.0}}]},
    {"readings": [{"time": NOW, "sensors": {"v": 1.0}}, {"sensors": {"v": 2.0}}]},
    {"readings": [{"time": NOW, "sensors": {"v": 1.0}}, {"time": None, "sensors": {"v": 2.0}}]},
    {"readings": [{"sensors": {"v": 1.0}, "quality": q} for q in ("good", "fine")]},
    {"readings": [{"sensors": {"v": 1.0}, "quality": q} for q in ("good", ["good"])]},
    {"readings": [{"sensors": {"v": 1.0}, "site": s} for s in ("s1", "s2")]},
    {"readings": [{"sensors": {"v": 1.0}, "asset": s} for s in ("a", None)]},
    {"readings": [{"sensors": {"v": 1.0}}, {"sensors": {}}]},
    {"readings": [{"sensors": {"v": 1.0}}, {"sensors": {"time": 1.0}}]},
    {"readings": [{"sensors": {"v": 1.0}, "time": rfc(NOW)}, {"sensors": {"v": 1.0}, "time": 5}]},
    {"site": "s2", "readings": [{"site": "s1", "sensors": {"v": 1.0}}] * 2},  # records win
]


@pytest.mark.parametrize("document", ODD)
def test_odd_shapes_agree_with_the_general_path(document: Any) -> None:
    check(document)
    check(document, asset=None, default=None)


_digit = st.sampled_from("0123456789")
_piece = st.one_of(st.text(_digit, min_size=1, max_size=3), st.sampled_from(["", "٣", "a"]))


@st.composite
def rfc3339_ish(draw: st.DrawFn) -> str:
    """Valid RFC 3339 strings near NOW, with one part sometimes broken."""
    text = rfc(NOW + draw(st.integers(-3 * 86400 * S, 3 * 86400 * S)))
    fraction = draw(st.integers(0, 9))
    text = text[:19] + ("." + text[20 : 20 + fraction] if fraction else "")
    text += draw(st.sampled_from(["Z", "z", "+00:00", "-07:30", "+13:45", "+99:00", "", "+07"]))
    if draw(st.booleans()):  # break or vary one character
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(_piece) + text[at + 1 :]
    if draw(st.booleans()):
        text = text[:10] + draw(st.sampled_from("Tt x")) + text[11:]
    return text


_record = st.fixed_dictionaries(
    {"sensors": st.dictionaries(st.sampled_from(["v", "temp", "a b"]),
                                st.one_of(st.floats(), st.integers(-5, 5)), max_size=3)},
    optional={"time": st.one_of(rfc3339_ish(), st.integers(0, 2 * NOW), st.floats(0, 2e18),
                                st.none()),
              "precision": st.sampled_from(["ns", "us", "ms", "s", "h"]),
              "asset": st.sampled_from(["a1", "b 2", ""]),
              "site": st.sampled_from(["s1", "s2"]),
              "quality": st.sampled_from(["good", "bad", "meh", None])},
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        _record,
        st.lists(_record, max_size=4),
        st.fixed_dictionaries(
            {"readings": st.lists(_record, max_size=4)},
            optional={
                "precision": st.sampled_from(["ms", "s", "x"]),
                "site": st.sampled_from(["s1", "s2"]),
            },
        ),
    )
)
def test_generated_documents_agree_with_the_general_path(document: Any) -> None:  # fmt: skip
    check(document)
    check(document, asset=None, default=None)


@settings(max_examples=400, deadline=None)
@given(st.lists(rfc3339_ish(), min_size=1, max_size=6), st.booleans())
def test_generated_rfc3339_batches_agree(times: list[str], uniform: bool) -> None:
    """A batch's times go through one vectorised pass when they share a layout."""
    if uniform:
        times = [times[0]] * len(times)
    check({"readings": [{"time": t, "sensors": {"v": 1.5}} for t in times]})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(NOW // S - 43200, NOW // S + 43200), min_size=2, max_size=5),
    st.integers(0, 999_999_999),
    st.sampled_from(["Z", "+05:45", "-11:00"]),
)
def test_valid_rfc3339_batches_always_take_the_fast_path(
    seconds: list[int], fraction: int, zone: str
) -> None:  # fmt: skip
    times = [rfc(s * S + fraction, zone) for s in seconds]
    assert check({"readings": [{"time": t, "sensors": {"v": 1.5}} for t in times]}) is not None
