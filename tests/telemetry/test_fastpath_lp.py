"""Line-protocol bodies through the fast codec: the general path's bytes, or declined.

The general path is `decode_line_protocol` → `LineFormatter`; the fast codec must never accept
a body it rejects and must write the same bytes (tag order, ignored tags, `repr` of values,
the quality field last, timestamps scaled by the precision), for MQTT (site and asset from the
topic, receipt time) and for the API's push (site only, a time on every line).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import FastCodec, LineFormatter, Reading, decode_line_protocol
from telemetry.errors import PayloadError

NOW = 1_795_392_000_000_000_000
TOPIC: dict[str, object] = {"site": "s1", "asset": "a1", "default_time_ns": NOW}
PUSH: dict[str, object] = {"site": "s1", "asset": None, "default_time_ns": None}


def decoded(body: bytes, precision: str, transport: dict[str, object]) -> list[Reading] | None:
    try:
        return decode_line_protocol(
            body,
            precision=precision,
            now=NOW,
            **transport,  # type: ignore[arg-type]
        )
    except PayloadError:
        return None
    except ValueError:  # the general parser's int("²"): the intake calls it internal_error
        return None


def check(body: bytes, precision: str = "ns", transport: dict[str, object] = TOPIC) -> bool:
    """Assert agreement; True when the fast codec took the body."""
    named: list[str] = []
    fast = FastCodec().convert_lines(
        body,
        precision=precision,
        now=NOW,
        assets=named,
        **transport,  # type: ignore[arg-type]
    )
    readings = decoded(body, precision, transport)
    if fast is None:
        return False
    assert readings is not None, f"accepted what the general path rejects: {body!r}"
    assert fast == (LineFormatter().lines(readings), len(readings))
    assert named == [r.asset for r in readings]
    return True


T = str(NOW).encode()
DOCUMENTED = [
    b"telemetry,asset=pump-01,site=s1 vibration_rms=2.31,bearing_temp=45.2 " + T,
    b"telemetry,site=s1,asset=pump-01 vibration_rms=2.31,bearing_temp=45.2 " + T,  # tag order
    b"telemetry,asset=p,host=gw1,site=s1 v=2.31 " + T,  # Telegraf's host tag: ignored
    b"telemetry v=1.5,w=2 " + T,  # site and asset from the topic; 2 is the float 2.0
    b"telemetry,asset=p v=1.5,quality=\"good\" " + T,
    b"telemetry,asset=p quality=\"uncertain\",v=1.5",  # receipt time
    b"telemetry,asset=p v=1e-05,w=1.5E3,x=-0.0,y=+2.50 " + T,  # other notations
    b"\n".join(b"telemetry,asset=p%d,site=s1 v=%d.5,t=20.25 %d" % (k, k, NOW - k)
               for k in range(50)) + b"\n",
    b"\n".join(b"telemetry,asset=p%d v=%d.5%s %d" % (k, k, b",w=1.0" * (k % 2), NOW - k)
               for k in range(9)),  # lines of different sensors
    b"\n".join(b"telemetry,asset=p v=0.5%s %d" % (b',quality="bad"' * (k % 2), NOW - k)
               for k in range(9)),  # quality on some lines
]  # fmt: skip


@pytest.mark.parametrize("body", DOCUMENTED)
def test_documented_line_protocol_takes_the_fast_path(body: bytes) -> None:
    assert check(body)


@pytest.mark.parametrize(
    ("precision", "factor"), [("ns", 1), ("us", 10**3), ("ms", 10**6), ("s", 10**9)]
)
def test_every_precision(precision: str, factor: int) -> None:
    body = b"telemetry,asset=p,site=s1 v=1.5 %d" % (NOW // factor)
    assert check(body, precision, TOPIC)
    assert check(body, precision, PUSH)


ODD = [
    b"", b"\n", b"# a comment\n", b"telemetry,asset=p v=1.5 " + T + b"\n# c\n",
    b"telemetry,asset=p v=1i " + T, b"telemetry,asset=p v=t " + T, b"telemetry,asset=p v=1_0",
    b'telemetry,asset=p v="x" ' + T, b'telemetry,asset=p v=1.0,quality="meh" ' + T,
    b'telemetry,asset=p v=1.0,quality="good",quality="bad" ' + T,
    b"telemetry,asset=p quality=1.5,v=1.0 " + T, b"telemetry,asset=p time=1.5 " + T,
    b"telemetry,asset=p v=1.0,v=2.0 " + T, b"telemetry,asset=p,asset=q v=1.0 " + T,
    b"telemetry,asset=p v=nan " + T, b"telemetry,asset=p v=inf " + T, b"telemetry,asset=p v=1e999",
    b"telemetry,asset=p v= " + T, b"telemetry,asset=p =1 " + T, b"telemetry,asset=p v=1=2,3 " + T,
    b"telemetry,asset=p v=1.0 -5", b"telemetry,asset=p v=1.0 12a",
    b"telemetry,asset=p v=1.0 \xc2\xb2",
    b"telemetry,asset=p v=1.0 " + T + b" ", b"telemetry,asset=p v=1.0  " + T,
    b"telemetry,asset=p v=1.0 99999999999999999999", b"telemetry,asset=p v=1.0 1",
    b"telemetry,asset=p,site=s2 v=1.0 " + T, b"other,asset=p v=1.0 " + T,
    b"telemetry,asset=p\\ q v=1.0 " + T, b"telemetry,asset=p v=1.0\r\n", b"telemetry,asset v=1",
    b"telemetry,asset=a/b v=1.0 " + T, b"telemetry,asset=p a/b=1.0 " + T, b"\xff",
    b"telemetry,asset=p v=1.0 " + T + b"\ntelemetry,asset=p v=2.0",  # some lines timed
]  # fmt: skip


@pytest.mark.parametrize("body", ODD)
def test_odd_line_protocol_agrees_with_the_general_path(body: bytes) -> None:
    check(body)
    check(body, "ms", PUSH)


_token = st.sampled_from(["v", "w", "quality", "1.5", "-2", "2i", "1e-7", '"good"', '"x"', "t",
                          "", "a b", "0.00001", "12.50", "nan", "٣"])  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        tags = draw(st.sampled_from(["", ",asset=p", ",site=s1,asset=q", ",asset=p,site=s2",
                                     ",host=h,asset=p"]))  # fmt: skip
        fields = ",".join(f"{draw(_token)}={draw(_token)}" for _ in range(draw(st.integers(1, 3))))
        stamp = draw(st.sampled_from(["", f" {NOW}", f" {NOW // 1000}", " 5", f" {NOW}0"]))
        lines.append(f"telemetry{tags} {fields}{stamp}")
    return "\n".join(lines).encode()


@settings(max_examples=500, deadline=None)
@given(bodies(), st.sampled_from(["ns", "us", "ms"]))
def test_generated_bodies_agree_with_the_general_path(body: bytes, precision: str) -> None:
    check(body, precision, TOPIC)
    check(body, precision, PUSH)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6))
def test_every_finite_float_comes_out_as_repr(values: list[float]) -> None:
    """Values written by repr are kept; any other notation is written again, as repr."""
    for text in (repr, str, "{:.17g}".format):
        fields = ",".join(f"s{i}={text(v)}" for i, v in enumerate(values))
        assert check(f"telemetry,asset=p {fields} {NOW}".encode())
