"""Intake: turn one MQTT message into a spool entry (validated line protocol) or a dead letter.

Decoding happens on receipt, before the spool, so bad input is acknowledged and dead-lettered at
once and the writer only concatenates ready line protocol (see docs/collector.md for why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from collector.fastpath import JsonLineFastPath
from collector.spool import DeadLetter, SpoolEntry
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
    ) -> None:
        self._prefix = prefix
        self._max_payload = max_payload_bytes
        self._limits = limits
        self._clock_ns = clock_ns
        self._formatter = LineFormatter()
        self._fast = JsonLineFastPath(limits)
        self._topics: dict[str, TopicInfo] = {}

    def _topic(self, topic: str) -> TopicInfo:
        info = self._topics.get(topic)
        if info is None:
            info = parse_topic(topic, self._prefix)  # raises on a bad topic: not cached
            if len(self._topics) >= _TOPICS_MAX:
                self._topics.clear()
            self._topics[topic] = info
        return info

    def process(self, topic: str, payload: bytes) -> SpoolEntry | DeadLetter:
        """One message in, one spool entry or one dead letter out."""
        received = self._clock_ns()
        info = self._topics.get(topic)
        if info is not None and info.format == "json" and len(payload) <= self._max_payload:
            # The common case: a known topic and a plain JSON payload (None: not that simple).
            try:
                fast = self._fast.convert(
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
