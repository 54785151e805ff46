"""The one shape of every input: a ``Source``, its health, and what it is built with.

Like Telegraf's ``ServiceInput`` (``Start(acc)``, ``Stop()``) with one ``Accumulator`` for every
plugin: each source (MQTT, serial ASCII, Modbus RTU; later Sparkplug B or OPC UA) is built from
its settings section by the registry (``collector.sources.registry``), is given a ``Feed`` named
after it (``collector.sources.feed``: the one way into the group committer, the spool and the
dead letters), and has ``start()``, ``stop()``, ``close()`` and ``health()``. The feed counts
what the source hands over; the service exports every source's counts and health the same way
in ``/metrics`` and ``/healthz``. docs/collector.md, "Writing a source", walks through a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from telemetry.reading import Reading

if TYPE_CHECKING:
    from collector.metrics import Metrics
    from collector.sources.feed import AckFn, Feed


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source's own view of its link: ``healthy`` False makes ``/healthz`` unhealthy.

    ``problem`` says why for people (it goes into ``/healthz``'s ``problems``); ``detail`` is
    shown under the source in ``/healthz`` (port open, devices answering...); ``errors`` are
    link errors that are not bad input (a port that would not open, a Modbus timeout), counted
    since the start, exported as ``equipmon_collector_source_errors_total{source,error}``.
    """

    healthy: bool
    problem: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)


class Source(Protocol):
    """What the service needs of every input."""

    @property
    def name(self) -> str:
        """Its identity: the ``source`` label in ``/metrics``, its key in ``/healthz`` and the
        topic field of its dead letters and spool rows (``mqtt``, ``serial:/dev/ttyUSB0``,
        ``modbus:/dev/ttyUSB1``)."""
        ...

    @property
    def kind(self) -> str:
        """Its registry key (``mqtt``, ``ascii``, ``modbus``)."""
        ...

    @property
    def feed(self) -> Feed:
        """Its handle on the common intake."""
        ...

    def start(self) -> None:
        """Start taking input in the background (never block on the device or the network)."""

    def stop(self) -> None:
        """Stop taking input; return once no more comes (before the intake's last commit)."""

    def close(self) -> None:
        """Release connections (after the intake's last commit and acknowledgements)."""

    def health(self) -> SourceHealth:
        """Its current health (cheap: ``/metrics`` and ``/healthz`` call it on every scrape)."""


class ReadingFeed(Protocol):
    """What a reader whose input cannot wait (a serial line) hands its frames to.

    ``put`` and ``reject`` take one frame's outcome; ``flush`` hands them over and returns once
    they are committed, so the reader takes no more from its device until what it took is
    durable (bytes then wait in the OS and device buffers: a device cannot be told to wait).
    ``collector.sources.feed.Feed`` is the collector's; tests may pass simpler ones.
    """

    def put(self, readings: list[Reading]) -> None:
        """One frame's readings."""

    def reject(self, reason: str, detail: str, payload: bytes) -> None:
        """One bad frame: a dead letter with its reason and what came over the wire."""

    def flush(self) -> None:
        """Hand over what was put and rejected; return once it is committed."""


Spawn = Callable[[str, Callable[[], None], threading.Event], threading.Thread]
"""Run ``target`` in a started thread named ``name`` until ``stop`` is set (the service's is its
supervisor's ``spawn``: a thread that dies is logged, counted, restarted and reported down)."""


def plain_thread(name: str, target: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """A ``Spawn`` without supervision (readers used on their own, in tests and tools)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What every source factory is given besides its settings section.

    ``open_feed(name, kind, ack)`` makes the source's feed; ``ack`` is for sources that
    acknowledge their input after the commit (MQTT). ``metrics`` is the process's (for a
    source's own gauges, such as MQTT's connection state). ``client_factories`` lets tests and
    tools put another client under a kind (the MQTT source takes ``client_factories["mqtt"]``).
    ``leaving``: the ``leave`` command, which runs only the sources that hand over a queue.
    ``spawn`` starts a source's own threads under the service's supervisor.
    """

    open_feed: Callable[[str, str, AckFn | None], Feed]
    metrics: Metrics
    spawn: Spawn = plain_thread
    clock_ns: Callable[[], int] = time.time_ns
    client_factories: Mapping[str, Any] = field(default_factory=dict)
    leaving: bool = False
