"""The lean receive path fed hand-built and malformed packets straight through a socket pair.

Whatever bytes arrive, ``loop_read`` never raises: a well-formed PUBLISH is handed over intact
and in order, and the first malformed packet ends the connection with a protocol error (as
paho's own reader does), never with an exception in the network thread.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from collector.sources.paho_fast import FastClient, Publish, missing_internals


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(  # noqa: PLR0917  (one argument per field of the packet)
    topic: bytes, payload: bytes, qos: int, mid: int, v5: bool, dup: bool
) -> bytes:
    """A PUBLISH as a broker sends it (v5 with an empty or a small property block)."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if v5:
        body += b"\x00"
    body += payload
    return bytes([0x30 | qos << 1 | (0x08 if dup else 0)]) + _varint(len(body)) + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def _client(sock: socket.socket, v5: bool) -> tuple[FastClient, list[Publish]]:
    client = FastClient(
        CallbackAPIVersion.VERSION2,
        client_id="fuzz",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        manual_ack=True,
    )
    got: list[Publish] = []
    client.on_publish_batch = got.extend
    client._sock = sock  # a connected socket, as after CONNACK
    return client, got


def _drain(client: FastClient) -> MQTTErrorCode:
    rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    for _ in range(10_000):
        if client._sock is None:
            break
        rc = client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not client.buffered_packet():
            break
    return rc


def test_the_internals_the_fast_path_uses_all_exist() -> None:
    assert missing_internals() == []


messages = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=40),
        st.binary(max_size=300),
        st.integers(0, 1),
        st.integers(1, 65535),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(batch=messages, v5=st.booleans())
def test_well_formed_publishes_arrive_intact_and_in_order(
    batch: list[tuple[bytes, bytes, int, int, bool]], v5: bool
) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        client, got = _client(ours, v5)
        theirs.sendall(b"".join(publish_packet(t, p, q, m, v5, d) for t, p, q, m, d in batch))
        _drain(client)
        expected = [(t, p, m if q else 0, q, 8 if d else 0) for t, p, q, m, d in batch]
        assert got == expected
    finally:
        ours.close()
        theirs.close()


@settings(max_examples=300, deadline=None)
@given(good=messages, garbage=st.binary(min_size=1, max_size=200), v5=st.booleans())
def test_garbage_after_good_packets_never_raises(
    good: list[tuple[bytes, bytes, int, int, bool]], garbage: bytes, v5: bool
) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        client, got = _client(ours, v5)
        theirs.sendall(b"".join(publish_packet(t, p, q, m, v5, d) for t, p, q, m, d in good))
        theirs.sendall(garbage)
        theirs.shutdown(socket.SHUT_WR)  # then the connection ends: every path must stop
        _drain(client)  # must not raise, whatever the bytes
        expected = [(t, p, m if q else 0, q, 8 if d else 0) for t, p, q, m, d in good]
        assert got[: len(expected)] == expected
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    "packet",
    [
        b"\x32\x02\x00\x00",  # QoS 1, empty topic, the packet id missing
        b"\x32\x03\x00\x05ab",  # the topic length overruns the packet
        b"\x30\x01\x00",  # one byte where a topic length needs two
        b"\x30\xff\xff\xff\xff\x7f",  # a remaining length of five bytes
        b"\x3a\x02\x00\x00",  # QoS 1 with DUP: still the packet id missing
    ],
)
@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize("tail", [b"", b"\x00" * 8], ids=["alone", "followed"])
def test_malformed_publishes_are_protocol_errors(
    pair: tuple[socket.socket, socket.socket], packet: bytes, v5: bool, tail: bytes
) -> None:
    ours, theirs = pair
    client, got = _client(ours, v5)
    theirs.sendall(packet + tail)
    rc = _drain(client)
    assert got == []
    assert rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client._sock is None
