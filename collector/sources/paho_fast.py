"""A paho client with a lean receive path and batched PUBACKs (profiled: paho's own costs dominate).

Profiling a backlog drain (docs/collector.md, "Where the time goes") showed paho spending most of
a message's time in its own machinery rather than in ours: ``select()`` and 3-5 ``recv()`` calls
per packet (it reads the fixed header byte by byte and only one packet per loop iteration for a
QoS 1 subscriber), an MQTT v5 ``Properties`` object built and parsed for every PUBLISH, an
``MQTTMessage`` object, topic-filter matching, and one queued packet plus one wake-up byte per
PUBACK. This subclass keeps paho for everything else (connect, reconnect with backoff, keep-alive,
subscriptions, TLS, QoS 2) and replaces only those hot spots:

* reads go through a buffer (one ``recv`` of up to 256 kB serves many packets) and up to
  ``_READ_BURST`` packets are handled per loop iteration;
* a QoS 0/1 PUBLISH is decoded in place and handed to ``on_publish_fast(topic, payload, mid, qos)``
  or, when ``on_publish_batch`` is set, collected and handed over as one list per read burst (one
  call, one lock and one metrics update per burst instead of per message), with its DUP flag
  (a redelivery: the collector recognises bad messages it already dead-lettered by it). v5
  properties are skipped: the collector uses none, and announces no Topic Alias Maximum, so the
  broker always sends the full topic;
* ``ack_many`` queues the PUBACKs of a whole commit group as one packet (one ``send``).

It relies on paho 2.x internals (``_packet_read``, ``_packet_handle``, ``_in_packet`` and its
layout, ``_packet_queue``, ``_loop``, ...: ``_METHODS`` and ``_ATTRIBUTES`` list all of them);
``supported()`` checks every one, and the collector falls back to the stock client (with a
warning naming what is missing) when one is not there. tests/collector exercise this path end to
end, and test_paho_fast_packets.py feeds it hand-built and malformed packets.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

log = logging.getLogger(__name__)

PublishHandler = Callable[[bytes, bytes, int, int], None]
# (topic, payload, packet id, QoS, DUP bit) of each PUBLISH of one read burst, in arrival order;
# the DUP bit is 8 for a redelivery (the fixed header's 0x08), 0 for a first delivery.
Publish = tuple[bytes, bytes, int, int, int]
BatchHandler = Callable[[list[Publish]], None]

_PUBLISH = 0x30
_DUP = 0x08
_PUBACK = 0x40
_PUBACK_WORD = 0x4002_0000  # PUBACK, remaining length 2; the packet id fills the low 16 bits
_RECV_BYTES = 262_144
# Packets handled per loop iteration before paho writes queued acks and checks keep-alive.
_READ_BURST = 256
# Every paho internal this module reads, writes, calls or overrides: methods of the class, and
# attributes each client sets in its constructor (checked on a throw-away instance).
_METHODS = (
    "_packet_read", "_packet_handle", "_packet_queue", "_loop", "_sock_recv", "_send_puback",
    "_loop_rc_handle",
)  # fmt: skip
_ATTRIBUTES = (
    "_sock", "_in_packet", "_msgtime_mutex", "_last_bytes_received", "_protocol", "_manual_ack",
)  # fmt: skip
# paho's ``_in_packet`` keys: ``_packet_read`` hands paho a packet in exactly this shape.
_IN_PACKET_KEYS = frozenset((
    "command", "have_remaining", "remaining_count", "remaining_mult", "remaining_length",
    "packet", "to_process", "pos",
))  # fmt: skip
_missing: list[str] | None = None


def missing_internals() -> list[str]:
    """The paho internals this client relies on that the installed paho lacks (empty: none)."""
    global _missing  # noqa: PLW0603  (checked once per process: paho does not change under us)
    if _missing is None:
        missing = [
            f"Client.{name}" for name in _METHODS if not callable(getattr(mqtt.Client, name, None))
        ]
        try:
            probe = mqtt.Client(CallbackAPIVersion.VERSION2)
        except Exception as exc:  # a paho whose constructor changed: the stock path it is
            missing.append(f"Client() failed: {exc}")
        else:
            missing += [f"client.{name}" for name in _ATTRIBUTES if not hasattr(probe, name)]
            packet = getattr(probe, "_in_packet", None)
            if not isinstance(packet, dict) or set(packet) != _IN_PACKET_KEYS:
                missing.append("client._in_packet layout")
        version = str(getattr(paho.mqtt, "__version__", ""))
        if not version.startswith("2."):
            missing.append(f"paho-mqtt 2.x (installed: {version or 'unknown'})")
        _missing = missing
    return list(_missing)


def supported() -> bool:
    """Whether the installed paho has every internal this client relies on."""
    return not missing_internals()


def _remaining_length(buf: bytearray, pos: int, size: int) -> tuple[int, int]:
    """(remaining length, body start) of the packet at ``pos``; (-1, 0) when the length is
    incomplete in the buffer or longer than MQTT's 4 bytes."""
    length, mult, i = 0, 1, pos + 1
    while i < size and i - pos <= 4:
        byte = buf[i]
        i += 1
        length += (byte & 127) * mult
        if not byte & 128:
            return length, i
        mult *= 128
    return -1, 0


def _fresh_in_packet() -> dict[str, Any]:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class FastClient(mqtt.Client):
    """paho ``Client`` with a buffered, lean PUBLISH path and ``ack_many``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_fast: PublishHandler | None = None
        self.on_publish_batch: BatchHandler | None = None
        # Most messages handed over in one batch: the collector sets its in-flight window, so
        # one batch never holds more than the broker should have sent unacknowledged.
        self.burst_max = _READ_BURST
        self._burst: list[Publish] = []
        self._rbuf = bytearray()
        self._rpos = 0
        self._rsock: object = None

    # -- reading -----------------------------------------------------------------------------

    def _frame(self) -> tuple[int, int, int] | None:
        """(command, body start, body end) of the next complete packet in the buffer, or None."""
        buf, pos = self._rbuf, self._rpos
        available = len(buf) - pos
        if available < 2:
            return None
        length = 0
        mult = 1
        i = pos + 1
        while True:
            if i >= len(buf):
                return None
            byte = buf[i]
            length += (byte & 127) * mult
            i += 1
            if not byte & 128:
                break
            mult *= 128
            if i - pos > 4:
                return (-1, 0, 0)  # more than 4 length bytes: malformed
        end = i + length
        if end > len(buf):
            return None
        return buf[pos], i, end

    def buffered_packet(self) -> bool:
        """Whether a complete packet is waiting in the read buffer."""
        return self._rsock is self._sock and self._frame() is not None

    def _packet_read(self) -> MQTTErrorCode:
        if self._rsock is not self._sock:  # a new connection: never mix bytes of two sockets
            self._rbuf = bytearray()
            self._rpos = 0
            self._rsock = self._sock
        frame = self._frame()
        while frame is None:
            try:
                data = self._sock_recv(_RECV_BYTES)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:
                log.debug("receive failed: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if self._rpos:  # compact: drop consumed bytes before appending
                del self._rbuf[: self._rpos]
                self._rpos = 0
            self._rbuf += data
            frame = self._frame()
        command, start, end = frame
        if command < 0:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._rpos = end
        if command & 0xF0 == _PUBLISH and command & 0x06 != 0x04:
            rc = self._fast_publish(command, start, end)
        else:  # everything else (CONNACK, SUBACK, PINGRESP, QoS 2, ...): paho's own handling
            self.flush_burst()  # callbacks see messages and other packets in arrival order
            packet = _fresh_in_packet()
            packet["command"] = command
            packet["packet"] = bytearray(self._rbuf[start:end])
            packet["have_remaining"] = 1
            self._in_packet = packet  # type: ignore[assignment]
            try:
                rc = self._packet_handle()
            except Exception as exc:  # paho raises MalformedPacket on a broken packet
                log.debug("malformed packet: %s", exc)
                rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            self._in_packet = _fresh_in_packet()  # type: ignore[assignment]
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return rc

    def _fast_publish(self, command: int, start: int, end: int) -> MQTTErrorCode:
        buf = self._rbuf
        if end - start < 2:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        qos = (command & 0x06) >> 1
        pos = start + 2 + (buf[start] << 8 | buf[start + 1])
        if pos + 2 * qos > end:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL  # the topic (or packet id) overruns the packet
        topic = bytes(buf[start + 2 : pos])
        mid = 0
        if qos:
            mid = buf[pos] << 8 | buf[pos + 1]
            pos += 2
        if self._protocol == mqtt.MQTTv5:  # skip the properties (a varint length, then bytes)
            length = 0
            mult = 1
            while pos < end:
                byte = buf[pos]
                pos += 1
                length += (byte & 127) * mult
                if not byte & 128:
                    break
                mult *= 128
            pos += length
        if pos > end:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if self.on_publish_batch is not None:
            self._burst.append((topic, bytes(buf[pos:end]), mid, qos, command & _DUP))
        elif self.on_publish_fast is not None:
            self.on_publish_fast(topic, bytes(buf[pos:end]), mid, qos)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def flush_burst(self) -> None:
        """Hand the messages collected so far to ``on_publish_batch``."""
        burst = self._burst
        if burst and self.on_publish_batch is not None:
            self._burst = []
            self.on_publish_batch(burst)

    def _read_publishes(self, budget: int) -> int:
        """Decode up to ``budget`` complete QoS 0/1 PUBLISH packets in a row straight from the
        buffer into the burst; returns how many (0: the next packet is something else, is
        incomplete, or looks malformed, and ``_packet_read`` deals with it).

        One tight loop: per packet, the method calls and the receive-time lock of the general
        path cost more than the decoding itself. Only for manual acks with ``on_publish_batch``.
        """
        if self._rsock is not self._sock:
            return 0
        buf, pos, size = self._rbuf, self._rpos, len(self._rbuf)
        burst = self._burst
        v5 = self._protocol == mqtt.MQTTv5
        done = 0
        while done < budget and size - pos >= 2:
            command = buf[pos]
            qos = (command & 0x06) >> 1
            if command & 0xF0 != _PUBLISH or qos > 1:
                break
            length, i = _remaining_length(buf, pos, size)
            end = i + length
            if length < 2 or end > size:
                break  # incomplete, or malformed (-1): the general path decides
            cut = i + 2 + (buf[i] << 8 | buf[i + 1])
            if cut + 2 * qos > end:
                break  # the topic (and packet id) overrun the packet: malformed
            topic = bytes(buf[i + 2 : cut])
            mid = 0
            if qos:
                mid = buf[cut] << 8 | buf[cut + 1]
                cut += 2
            if v5:  # skip the properties: a one-byte length is all a broker sends us here
                if cut >= end or buf[cut] & 128:
                    break
                cut += 1 + buf[cut]
            if cut > end:
                break
            burst.append((topic, bytes(buf[cut:end]), mid, qos, command & _DUP))
            pos = end
            done += 1
        if done:
            self._rpos = pos
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()
        return done

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle up to ``_READ_BURST`` packets (paho handles one per call for a subscriber)."""
        budget = max(max_packets, _READ_BURST)
        batched = self.on_publish_batch is not None and self._manual_ack
        try:
            while budget > 0:
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                if batched:
                    if len(self._burst) >= self.burst_max:
                        self.flush_burst()
                    handled = self._read_publishes(min(budget, self.burst_max - len(self._burst)))
                    if handled:
                        budget -= handled
                        continue
                rc = self._packet_read()
                budget -= 1
                if rc > 0:
                    self.flush_burst()  # before on_disconnect: they belong to this connection
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    break
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            self.flush_burst()

    def _loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        # Packets already in the buffer do not make the socket readable: handle them first and
        # do not sleep in select() while more are waiting.
        if self._sock is not None and self.buffered_packet():
            rc = self.loop_read()
            if rc or self._sock is None:
                return rc
            if self.buffered_packet():
                timeout = 0.0
        return super()._loop(timeout)

    # -- acknowledging -----------------------------------------------------------------------

    def ack_many(self, mids: Sequence[int]) -> None:
        """Queue PUBACKs for QoS 1 message ids as one packet (one wake-up, one ``send``)."""
        if not mids:
            return
        # Each PUBACK is 0x40 0x02 <packet id>: one big-endian 32-bit word per message.
        blob = struct.pack(f">{len(mids)}I", *[_PUBACK_WORD | mid for mid in mids])
        self._packet_queue(_PUBACK, bytearray(blob), 0, 0)
