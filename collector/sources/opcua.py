"""One OPC UA server read through subscriptions: connect, subscribe, gather, commit, reconnect.

The source runs its own asyncio loop (asyncua is asynchronous) in one thread:

- **connect** with the configured security (None, or Basic256Sha256 with a client certificate,
  self-signed in the data folder when none is configured) and user;
- **subscribe**: one subscription per group (its publishing interval), one monitored item per
  node (its sampling interval and queue), nodes named by id or found by browsing an area
  (each object below it an asset, its numeric variables the sensors);
- **gather**: data-change notifications are collected and, every ``flush_interval_ms``, become
  readings (one per asset and timestamp) handed to the committer as one spool entry. A value
  with a Bad status is not a reading: it is counted per node and shown on /healthz as
  instrument trouble. Uncertain values are stored with quality ``uncertain``;
- **reconnect**: a watchdog reads the server's state every ``watchdog_s``; when the connection
  is lost the client backs off (capped, with jitter), connects again and re-creates the
  subscriptions, and the gap — how long no data could come — is logged, counted and shown.

Subscriptions deliver what changed, not what stayed the same (OPC UA's deadband of 0); the
server's queue keeps ``queue_size`` samples per item between publishes, so nothing sampled in
a publishing interval is lost while connected. What happens on the server while the
connection is down is not recoverable through a subscription (that would be History Read):
the gap is reported instead of hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from collector.opcua.settings import OpcUaGroupSettings, OpcUaServerSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import Feed
from collector.spool import DeadLetter, SpoolEntry
from telemetry.codecs.line_protocol import LineFormatter
from telemetry.errors import ValidationError
from telemetry.reading import Quality, Reading, build_reading

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class _Item:
    asset: str
    sensor: str
    node: str  # the node id as text, for counts and messages


@dataclass
class OpcUaStatus:
    """What /healthz and /metrics show of one OPC UA source."""

    connected: bool = False
    error: str | None = None
    items: int = 0
    readings: int = 0
    bad_values: Counter[str] = field(default_factory=Counter)  # node id -> count
    uncertain_values: int = 0
    skipped_values: int = 0
    reconnects: int = 0
    gaps: int = 0
    last_gap_s: float | None = None
    last_data_ns: int | None = None


class OpcUaSource:
    """Reads one OPC UA server into the spool through the committer."""

    kind = "opcua"

    def __init__(
        self,
        settings: OpcUaServerSettings,
        feed: Feed,
        *,
        data_dir: Path,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.name = f"opcua:{settings.name}"
        self.feed = feed
        self._data_dir = data_dir
        self._clock = clock_ns
        self.status = OpcUaStatus()
        self._formatter = LineFormatter()
        self._pending: list[tuple[_Item, float, int, Quality | None]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._lost_at: float | None = None
        self._rng = random.Random()

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the source's thread (it connects and keeps reconnecting until stopped)."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Hand over what was gathered, disconnect, and end the thread: nothing more comes in."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def close(self) -> None:
        """Nothing: the session ended with ``stop``."""

    def health(self) -> SourceHealth:
        """Healthy while connected and subscribed; else the error says why (a refused login,
        an unreachable server). Bad values are instrument trouble, not the link's: listed."""
        s = self.status
        return SourceHealth(
            healthy=s.connected,
            problem="" if s.connected else f"{self.name}: {s.error or 'connecting'}",
            detail={
                "url": self.settings.url,
                "connected": s.connected,
                "error": s.error,
                "monitored_items": s.items,
                "readings": s.readings,
                "bad_values": sum(s.bad_values.values()),
                "instrument_trouble": sorted(s.bad_values),
                "uncertain_values": s.uncertain_values,
                "reconnects": s.reconnects,
                "gaps": s.gaps,
                "last_gap_s": s.last_gap_s,
            },
            errors={"bad_value": sum(s.bad_values.values()), "gap": s.gaps},
        )

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        delay = self.settings.reconnect_min_s
        while not self._stopping.is_set():
            client = self._client()
            try:
                await self._session(client)
                delay = self.settings.reconnect_min_s  # a session that ran: start over
            except Exception as exc:  # every failure is reported, then retried
                self._lost(exc)
            finally:
                await _close(client)
                self._flush()
            if self._stopping.is_set():
                break
            wait = self._rng.uniform(delay / 2, delay)
            delay = min(delay * 2, self.settings.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    def _client(self) -> Client:
        client = Client(self.settings.url, timeout=self.settings.request_timeout_s)
        if self.settings.username:
            client.set_user(self.settings.username)
            password = self.settings.password
            client.set_password(password.get_secret_value() if password else "")
        return client

    async def _session(self, client: Client) -> None:
        await self._secure(client)
        await client.connect()
        items = 0
        for group in self.settings.groups:
            items += await self._subscribe(client, group)
        self.status.items = items
        self.status.connected = True
        self.status.error = None
        if self._lost_at is not None:
            gap = time.monotonic() - self._lost_at
            self.status.gaps += 1
            self.status.last_gap_s = round(gap, 3)
            log.warning("%s: subscriptions re-created after %.1f s without data", self.name, gap)
            self._lost_at = None
        log.info("%s: %d monitored items on %s", self.name, items, self.settings.url)
        flush_s = self.settings.flush_interval_ms / 1000
        next_check = time.monotonic() + self.settings.watchdog_s
        assert self._stopping is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), flush_s)
            self._flush()
            if time.monotonic() >= next_check:
                await client.check_connection()  # raises once the connection is gone
                next_check = time.monotonic() + self.settings.watchdog_s

    async def _secure(self, client: Client) -> None:
        s = self.settings
        if s.security == "none":
            return
        cert, key = s.certificate, s.private_key
        if cert is None or key is None:
            folder = self._data_dir / "opcua"
            folder.mkdir(parents=True, exist_ok=True)
            key, cert = folder / "client-key.pem", folder / "client-cert.der"
            if not (key.exists() and cert.exists()):
                await client.setup_self_signed_certificate(key, cert, host_name="equipmon")
        mode = (
            ua.MessageSecurityMode.Sign
            if s.mode == "sign"
            else ua.MessageSecurityMode.SignAndEncrypt
        )
        server_cert = str(s.server_certificate) if s.server_certificate else None
        await client.set_security(
            SecurityPolicyBasic256Sha256, str(cert), str(key), server_certificate=server_cert,
            mode=mode,
        )  # fmt: skip

    async def _subscribe(self, client: Client, group: OpcUaGroupSettings) -> int:
        items = await self._items(client, group)
        handler = _Handler(self, items)
        subscription = await client.create_subscription(
            ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=group.publishing_interval_ms,
                RequestedLifetimeCount=300,
                RequestedMaxKeepAliveCount=10,
                PublishingEnabled=True,
            ),
            handler,
        )
        nodes = [client.get_node(node_id) for node_id in items]
        results = await subscription.subscribe_data_change(
            nodes, sampling_interval=group.sampling_interval_ms, queuesize=group.queue_size
        )
        refused = [
            (node_id, result)
            for node_id, result in zip(items, results, strict=True)
            if isinstance(result, ua.StatusCode)
        ]
        for node_id, result in refused:
            log.error("%s: node %s cannot be monitored: %s", self.name, node_id, result)
        return len(items) - len(refused)

    async def _items(self, client: Client, group: OpcUaGroupSettings) -> dict[str, _Item]:
        items: dict[str, _Item] = {}
        for node in group.nodes:
            parsed = ua.NodeId.from_string(node.node_id)
            if parsed.NamespaceUri:  # nsu=<uri>: the index this server gives the URI
                index = await client.get_namespace_index(parsed.NamespaceUri)
                parsed = ua.NodeId(parsed.Identifier, index, parsed.NodeIdType)
            items[parsed.to_string()] = _Item(node.asset, node.sensor, node.node_id)
        if group.browse:
            area = await client.nodes.objects.get_child(group.browse.split("/"))
            for asset_node in await area.get_children(nodeclassmask=ua.NodeClass.Object):
                asset = (await asset_node.read_browse_name()).Name
                for var in await asset_node.get_children(nodeclassmask=ua.NodeClass.Variable):
                    sensor = (await var.read_browse_name()).Name
                    node_id = var.nodeid.to_string()
                    items[node_id] = _Item(asset, sensor, node_id)
        return items

    # Data --------------------------------------------------------------------------------------

    def notify(self, item: _Item, data_value: Any) -> None:
        """One data change (the asyncio thread): gathered until the next flush."""
        status = data_value.StatusCode
        if status is not None and status.is_bad():
            self.status.bad_values[item.node] += 1
            return
        quality: Quality | None = None
        if status is not None and status.is_uncertain():
            quality = "uncertain"
            self.status.uncertain_values += 1
        raw = data_value.Value.Value if data_value.Value is not None else None
        if isinstance(raw, bool):
            value = 1.0 if raw else 0.0
        elif isinstance(raw, int | float):
            value = float(raw)
        else:
            self.status.skipped_values += 1  # strings, arrays, structures: not sensor values
            return
        self._pending.append((item, value, self._time_ns(data_value), quality))

    def _time_ns(self, data_value: Any) -> int:
        order = {"source": ("SourceTimestamp", "ServerTimestamp"), "server": ("ServerTimestamp",)}
        for attribute in order.get(self.settings.timestamps, ()):
            stamp = getattr(data_value, attribute, None)
            if stamp is not None:
                return int(stamp.timestamp() * 1_000_000) * 1000
        return self._clock()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        grouped: dict[tuple[str, int, Quality | None], dict[str, float]] = {}
        for item, value, time_ns, quality in pending:
            grouped.setdefault((item.asset, time_ns, quality), {})[item.sensor] = value
        received = self._clock()
        readings: list[Reading] = []
        dead: list[DeadLetter] = []
        for (asset, time_ns, quality), values in grouped.items():
            try:
                readings.append(
                    build_reading(
                        site=self.settings.site, asset=asset, time_ns=time_ns, sensors=values,
                        quality=quality, now=received,
                    )
                )  # fmt: skip
            except ValidationError as exc:
                detail = str(exc).encode()
                dead.append(
                    DeadLetter(received, exc.reason, str(exc), self.name, detail, len(detail))
                )
        items: list[SpoolEntry | DeadLetter] = list(dead)
        if readings:
            body = self._formatter.lines(readings)
            items.append(SpoolEntry(self.name, body, len(readings), received))
        self.feed.submit(items, [None] * len(items))
        self.status.readings += len(readings)
        self.status.last_data_ns = received

    def _lost(self, exc: BaseException) -> None:
        was = self.status.connected
        self.status.connected = False
        self.status.error = _describe(exc)
        if was:
            self.status.reconnects += 1
            self._lost_at = time.monotonic()
            log.warning("%s: connection lost: %s", self.name, self.status.error)
        else:
            log.error(
                "%s: cannot connect to %s: %s", self.name, self.settings.url, self.status.error
            )


@dataclass(frozen=True, slots=True)
class OpcUaSection:
    """The registry's section for one OPC UA source: the server entry, and where the client's
    self-signed certificate is kept (the collector's data folder)."""

    server: OpcUaServerSettings
    data_dir: Path


def build(section: OpcUaSection, context: SourceContext) -> OpcUaSource:
    """The OPC UA source of one server entry."""
    name = f"opcua:{section.server.name}"
    return OpcUaSource(
        section.server, context.open_feed(name, OpcUaSource.kind, None),
        data_dir=section.data_dir, clock_ns=context.clock_ns,
    )  # fmt: skip


class _Handler:
    """asyncua's data-change callback for one subscription."""

    def __init__(self, source: OpcUaSource, items: dict[str, _Item]) -> None:
        self._source = source
        self._items = items

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        item = self._items.get(node.nodeid.to_string())
        if item is not None:
            self._source.notify(item, data.monitored_item.Value)

    def status_change_notification(self, status: Any) -> None:
        log.warning("%s: subscription status %s", self._source.name, status)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ua.UaStatusCodeError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 2.0)
    except Exception:  # a lost connection cannot be closed politely; the socket goes anyway
        log.debug("disconnect after a lost connection failed", exc_info=True)
