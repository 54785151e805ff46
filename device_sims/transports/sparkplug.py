"""A simulated Sparkplug B edge node: births with aliases, DDATA, deaths, rebirth on request,
and store-and-forward while the primary host's STATE says offline.

One edge node per site (the Sparkplug group is the site), one Sparkplug device per asset. It
speaks Sparkplug B 3.0 as an edge node must, with the generated Eclipse Tahu module
(telemetry.sparkplug):

- its MQTT will is an NDEATH with the session's ``bdSeq``; NBIRTH carries the same ``bdSeq``
  and sequence number 0; every later message the next sequence number (0-255, wrapping);
- a device's first reading is preceded by its DBIRTH (names, aliases, data types); DDATA then
  carries aliases only, at QoS 0 as the specification requires;
- an NCMD ``Node Control/Rebirth`` makes it publish NBIRTH and every DBIRTH again;
- with a primary host configured it publishes nothing until the host's retained STATE says
  online; while it says offline, readings are stored, and when the host is back they follow a
  new birth as historical metrics with their own timestamps. The readings sent during the
  ``replay_margin_s`` before the host went offline are sent again too: a host that died had
  not necessarily committed what it had just received (QoS 0 has no acknowledgement), and a
  point written twice is one point in InfluxDB.

Faults for tests: ``skip_sequence`` (a gap), ``kill`` (drop the connection: the broker sends
the will), ``device_death``, ``publish_raw`` (a truncated or foreign payload).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sims.engine import Sample
from telemetry.sparkplug import sparkplug_b_pb2 as pb

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"

NS_PER_MS = 1_000_000


def state_topic(host_id: str) -> str:
    """The primary host's retained STATE topic (Sparkplug 3.0)."""
    return f"{NAMESPACE}/STATE/{host_id}"


@dataclass(slots=True)
class _Device:
    aliases: dict[str, int]
    born: bool = False


class SparkplugEdgeNode:
    """One edge node on the broker; ``send`` takes readings of any asset of its site."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        group: str,
        edge_node: str,
        primary_host: str | None = None,
        replay_margin_s: float = 5.0,
        store_limit: int = 1_000_000,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.group, self.edge_node = group, edge_node
        self.primary_host = primary_host
        self._margin_ns = int(replay_margin_s * 1e9)
        self._lock = threading.RLock()
        self._devices: dict[str, _Device] = {}
        self._next_alias = 1
        self._seq = 0
        self._bd_seq = 0
        self._host_online = primary_host is None
        self._state_stamp = 0  # timestamp of the newest STATE seen (3.0: older ones are stale)
        self._session = False  # NBIRTH published on the current connection
        self._stored: deque[Sample] = deque(maxlen=store_limit)
        # (wall-clock send time, reading) of what was sent in the last replay margin
        self._recent: deque[tuple[int, Sample]] = deque()
        self.counters = {"births": 0, "data": 0, "stored": 0, "rebirths": 0, "connects": 0}
        self._auth = (username, password) if username else None
        self._client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"spb-{self.group}-{self.edge_node}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        if self._auth is not None:
            client.username_pw_set(*self._auth)
        return client

    def _topic(self, kind: str, device: str | None = None) -> str:
        tail = f"/{device}" if device else ""
        return f"{NAMESPACE}/{self.group}/{kind}/{self.edge_node}{tail}"

    # Transport interface --------------------------------------------------------------------

    def start(self) -> None:
        """Connect (paho keeps reconnecting) with the NDEATH will of a new session."""
        self._set_will()
        self._client.connect_async(self.host, self.port, keepalive=10)
        self._client.loop_start()

    def send(self, sample: Sample) -> None:
        """Publish one reading as DDATA now, or store it while the primary host is offline."""
        with self._lock:
            if not (self._session and self._host_online):
                self._stored.append(sample)
                self.counters["stored"] += 1
                return
            self._send_data(sample, historical=False)

    def tick(self, now_ns: int) -> None:
        """Nothing is batched."""

    def flush(self, timeout_s: float) -> bool:
        """True once nothing is stored (QoS 0: published is all an edge node can know)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._stored and self._session:
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Publish NDEATH (as an edge node that leaves on purpose does) and disconnect."""
        with self._lock:
            if self._session:
                self._client.publish(self._topic("NDEATH"), self._death_payload(), qos=1)
            self._session = False
        self._client.disconnect()
        self._client.loop_stop()

    def stats(self) -> dict[str, int]:
        """Births, data messages, stored readings, rebirths and connects."""
        with self._lock:
            return {**self.counters, "buffered": len(self._stored)}

    # Faults -----------------------------------------------------------------------------------

    def skip_sequence(self, count: int = 1) -> None:
        """Lose ``count`` sequence numbers, as if messages had been dropped."""
        with self._lock:
            self._seq = (self._seq + count) % 256

    def device_death(self, device: str) -> None:
        """Publish DDEATH for one device; its next reading is preceded by a new DBIRTH."""
        with self._lock:
            state = self._devices.get(device)
            if state is None or not state.born:
                return
            state.born = False
            payload = pb.Payload(timestamp=_now_ms(), seq=self._next_seq())
            self._client.publish(self._topic("DDEATH", device), payload.SerializeToString())

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the NDEATH will."""
        with self._lock:
            self._session = False
            sock = self._client.socket()
        if sock is not None:
            sock.close()  # paho notices, reconnects, and a new session begins with a new bdSeq

    def publish_raw(self, kind: str, payload: bytes, device: str | None = None) -> None:
        """Publish an arbitrary payload (a malformed one) on this node's topic."""
        self._client.publish(self._topic(kind, device), payload)

    # Sessions -----------------------------------------------------------------------------------

    def _set_will(self) -> None:
        self._client.will_set(self._topic("NDEATH"), self._death_payload(), qos=1, retain=False)

    def _death_payload(self) -> bytes:
        payload = pb.Payload(timestamp=_now_ms())
        payload.metrics.append(
            pb.Payload.Metric(name="bdSeq", datatype=pb.Int64, long_value=self._bd_seq)
        )
        return payload.SerializeToString()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: object,
        properties: object,
    ) -> None:
        self.counters["connects"] += 1
        client.subscribe(self._topic("NCMD"), qos=1)
        if self.primary_host is not None:
            client.subscribe(state_topic(self.primary_host), qos=1)
        with self._lock:
            if self._host_online:
                self._birth()

    def _on_disconnect(self, client: mqtt.Client, *args: object) -> None:
        # The next connection is a new session: a new bdSeq, in its will and in its NBIRTH.
        with self._lock:
            self._session = False
            self._bd_seq = (self._bd_seq + 1) % 256
            self._set_will()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.primary_host is not None and msg.topic == state_topic(self.primary_host):
            self._on_state(bytes(msg.payload))
            return
        payload = pb.Payload()
        try:
            payload.ParseFromString(bytes(msg.payload))
        except Exception:  # a foreign command: ignore it as an edge node would
            return
        if any(m.name == "Node Control/Rebirth" and m.boolean_value for m in payload.metrics):
            with self._lock:
                self.counters["rebirths"] += 1
                if self._host_online:
                    self._birth()

    def _on_state(self, raw: bytes) -> None:
        try:
            state = json.loads(raw)
            online, stamp = bool(state["online"]), int(state.get("timestamp", 0))
        except (ValueError, TypeError, KeyError):
            online, stamp = raw.strip().upper() == b"ONLINE", 0  # Sparkplug 2.2: a bare word
        with self._lock:
            if stamp and stamp < self._state_stamp:
                return  # the late will of a host session that has already been replaced
            self._state_stamp = stamp
            was = self._host_online
            self._host_online = online
            if not online and was:
                # What went out just before the host died may not have been committed by it.
                self._stored.extendleft(sample for _, sample in reversed(self._recent))
                self._recent.clear()
            if online and not was:
                self._birth()
                self._forward_stored()

    def _birth(self) -> None:
        """NBIRTH and every known device's DBIRTH (a new session or a rebirth)."""
        self._seq = 0
        payload = pb.Payload(timestamp=_now_ms(), seq=0)
        payload.metrics.append(
            pb.Payload.Metric(name="bdSeq", datatype=pb.Int64, long_value=self._bd_seq)
        )
        payload.metrics.append(
            pb.Payload.Metric(name="Node Control/Rebirth", datatype=pb.Boolean, boolean_value=False)
        )
        self._client.publish(self._topic("NBIRTH"), payload.SerializeToString())
        self._session = True
        self.counters["births"] += 1
        for device, state in self._devices.items():
            self._device_birth(device, state)

    def _device_birth(self, device: str, state: _Device) -> None:
        payload = pb.Payload(timestamp=_now_ms(), seq=self._next_seq())
        for name, alias in state.aliases.items():
            payload.metrics.append(
                pb.Payload.Metric(name=name, alias=alias, datatype=pb.Double, is_null=True)
            )
        self._client.publish(self._topic("DBIRTH", device), payload.SerializeToString())
        state.born = True

    def _forward_stored(self) -> None:
        while self._stored:
            self._send_data(self._stored.popleft(), historical=True)

    def _send_data(self, sample: Sample, *, historical: bool) -> None:
        state = self._devices.get(sample.asset)
        if state is None:
            state = self._devices[sample.asset] = _Device({})
        new = [name for name in sample.sensors if name not in state.aliases]
        for name in new:
            state.aliases[name] = self._next_alias
            self._next_alias += 1
        if new or not state.born:
            self._device_birth(sample.asset, state)
        time_ms = sample.time_ns // NS_PER_MS
        payload = pb.Payload(timestamp=_now_ms(), seq=self._next_seq())
        for name, value in sample.sensors.items():
            payload.metrics.append(
                pb.Payload.Metric(
                    alias=state.aliases[name],
                    timestamp=time_ms,
                    datatype=pb.Double,
                    double_value=value,
                    is_historical=historical,
                )
            )
        self._client.publish(self._topic("DDATA", sample.asset), payload.SerializeToString())
        self.counters["data"] += 1
        self._remember(sample)

    def _remember(self, sample: Sample) -> None:
        now = time.time_ns()
        self._recent.append((now, sample))
        horizon = now - self._margin_ns
        # By the time it was sent (a reading's own time may be simulated), and at most 100,000.
        while self._recent and (self._recent[0][0] < horizon or len(self._recent) > 100_000):
            self._recent.popleft()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 256
        return self._seq


def _now_ms() -> int:
    return time.time_ns() // NS_PER_MS
