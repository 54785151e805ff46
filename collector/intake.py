"""Intake: turn one MQTT message into a spool entry (validated line protocol) or a dead letter.

Decoding happens on receipt, before the spool, so bad input is acknowledged and dead-lettered at
once and the writer only concatenates ready line protocol (see docs/collector.md for why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import cast

from collector.spool import DeadLetter, SpoolEntry
from telemetry import FastCodec
from telemetry.codecs.json_codec import decode_json
from telemetry.codecs.line_protocol import LineFormatter, decode_line_protocol
from telemetry.errors import PayloadError
from telemetry.reading import DEFAULT_LIMITS, ValidationLimits
from telemetry.topics import DEFAULT_PREFIX, TopicInfo, parse_topic

log = logging.getLogger(__name__)

_TOPICS_MAX = 100_000  # parsed topics are cached; bounded for fleets with churn


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message was refused (``reason`` is telemetry's stable code)."""

    reason: str
    detail: str


class Intake:
    """Decodes and validates payloads by topic; never raises on bad input."""

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_payload_bytes: int = 1_048_576,
        limits: ValidationLimits = DEFAULT_LIMITS,
        clock_ns: Callable[[], int],
        fast_codec: bool = True,
    ) -> None:
        self._prefix = prefix
        self._max_payload = max_payload_bytes
        self._limits = limits
        self._clock_ns = clock_ns
        self._formatter = LineFormatter()
        # None: every message through the general codec (mqtt.fast_path false).
        self._fast = FastCodec(limits) if fast_codec else None
        self._topics: dict[str, TopicInfo] = {}
        # Series key, site and asset of each JSON topic whose site and asset are valid (see
        # ``process_many``).
        self._json_series: dict[str, tuple[str, tuple[str, str]]] = {}
        # Site and asset of each line-protocol topic (the lines' tags may name others).
        self._lp_places: dict[str, tuple[str, str]] = {}

    def _topic(self, topic: str) -> TopicInfo:
        info = self._topics.get(topic)
        if info is None:
            info = parse_topic(topic, self._prefix)  # raises on a bad topic: not cached
            if len(self._topics) >= _TOPICS_MAX:
                self._topics.clear()
            self._topics[topic] = info
        return info

    def process_many(
        self, topics: list[str], payloads: list[bytes]
    ) -> list[SpoolEntry | DeadLetter]:
        """A read burst in, one spool entry or dead letter per message out, in order.

        A burst of single-reading JSON messages of a documented shape (what most sensors send)
        is checked and formatted in C-level passes over the whole burst (``convert_singles``),
        and so is a burst of one-line line-protocol messages (``convert_line_burst``), with one
        receipt time; any other burst goes message by message through ``process``.
        """
        if len(payloads) > 1 and self._fast is not None:
            received = self._clock_ns()
            try:
                bodies = self._burst_bodies(topics, payloads, received)
            except Exception:  # a bug here must not lose messages: one by one decides
                log.exception("burst fast path failed")
                bodies = None
            if bodies is not None:
                return list(map(SpoolEntry, topics, bodies, repeat(1), repeat(received)))
        return list(map(self.process, topics, payloads))

    def _burst_bodies(
        self, topics: list[str], payloads: list[bytes], received: int
    ) -> list[bytes] | None:
        if self._fast is None:
            return None
        if max(map(len, payloads)) > self._max_payload:
            return None
        if topics[0] in self._lp_places or topics[0].endswith("/lp"):
            return self._line_burst(topics, payloads, received)
        known = list(map(self._json_series.get, topics))
        if None in known:
            for topic in {t for t, s in zip(topics, known, strict=True) if s is None}:
                self._learn_series(topic)
            known = list(map(self._json_series.get, topics))
            if None in known:
                return None  # a topic that is not a valid JSON topic: message by message
        entries = cast("list[tuple[str, tuple[str, str]]]", known)
        return self._fast.convert_singles(
            payloads, list(map(itemgetter(0), entries)), list(map(itemgetter(1), entries)),
            default_time_ns=received, now=received,
        )  # fmt: skip

    def _line_burst(
        self, topics: list[str], payloads: list[bytes], received: int
    ) -> list[bytes] | None:
        """A burst of line-protocol messages (one line each, what a sensor sends) as one body."""
        if self._fast is None:
            return None
        places = list(map(self._lp_places.get, topics))
        if None in places:
            for topic in {t for t, s in zip(topics, places, strict=True) if s is None}:
                self._learn_series(topic)
            places = list(map(self._lp_places.get, topics))
            if None in places:
                return None  # not all valid line-protocol topics: message by message
        return self._fast.convert_line_burst(
            payloads, cast("list[tuple[str, str]]", places), default_time_ns=received,
            now=received,
        )  # fmt: skip

    def _learn_series(self, topic: str) -> None:
        try:
            info = self._topic(topic)
        except PayloadError:
            return  # a bad topic: ``process`` dead-letters its messages
        if self._fast is None:
            return
        if info.format == "lp":
            if len(self._lp_places) >= _TOPICS_MAX:
                self._lp_places.clear()
            self._lp_places[topic] = (info.site, info.asset)
            return
        key = self._fast.series_key(info.site, info.asset)
        if key is not None:
            if len(self._json_series) >= _TOPICS_MAX:
                self._json_series.clear()
            self._json_series[topic] = (key, (info.site, info.asset))

    def process(self, topic: str, payload: bytes) -> SpoolEntry | DeadLetter:
        """One message in, one spool entry or one dead letter out."""
        received = self._clock_ns()
        info = self._topics.get(topic)
        if self._fast is not None and info is not None and len(payload) <= self._max_payload:
            # The common case: a known topic and a documented shape (None: not that simple).
            convert = self._fast.convert if info.format == "json" else self._fast.convert_lines
            try:
                fast = convert(
                    payload, site=info.site, asset=info.asset, default_time_ns=received,
                    now=received,
                )  # fmt: skip
            except Exception:  # a bug here must not lose the message: the general path decides
                log.exception("JSON fast path failed on %s", topic)
                fast = None
            if fast is not None:
                return SpoolEntry(topic, fast[0], fast[1], received)
        try:
            outcome = self._decode(topic, payload, received)
        except Exception as exc:  # a codec bug must not stop the pipeline: keep the message
            log.exception("unexpected error decoding a message on %s", topic)
            outcome = Rejected("internal_error", f"{type(exc).__name__}: {exc}")
        if isinstance(outcome, Rejected):
            return DeadLetter(
                received, outcome.reason, outcome.detail, topic, payload, len(payload)
            )
        return outcome

    def _decode(self, topic: str, payload: bytes, received: int) -> SpoolEntry | Rejected:
        # Refuse oversized payloads before spending CPU (or memory) on decoding them.
        if len(payload) > self._max_payload:
            return Rejected(
                "payload_too_large",
                f"payload is {len(payload)} bytes; the limit is {self._max_payload}",
            )
        try:
            info = self._topic(topic)
            # The receipt time stamps records without a time; ``now`` anchors the range check
            # so that a message decoded again later is judged as it was on receipt.
            if info.format == "lp":
                readings = decode_line_protocol(
                    payload,
                    site=info.site,
                    asset=info.asset,
                    default_time_ns=received,
                    limits=self._limits,
                    now=received,
                )
            else:
                readings = decode_json(
                    payload,
                    site=info.site,
                    asset=info.asset,
                    default_time_ns=received,
                    limits=self._limits,
                    now=received,
                )
        except PayloadError as exc:
            return Rejected(exc.reason, str(exc))
        return SpoolEntry(topic, self._formatter.lines(readings), len(readings), received)
