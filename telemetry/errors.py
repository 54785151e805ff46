"""Typed errors of the telemetry contract: each rejection names its reason code and location."""

from __future__ import annotations


class TelemetryError(Exception):
    """Root of every error raised by the telemetry package."""


class PayloadError(TelemetryError):
    """A payload or reading was rejected.

    ``reason`` is a stable snake_case code (used for metrics and dead letters); ``where``
    locates the problem inside the payload (``readings[3].sensors.temp``,
    ``line 2, column 14``) or is empty.
    """

    reason = "invalid_payload"

    def __init__(self, message: str, *, where: str = "", reason: str | None = None) -> None:
        self.detail = message
        self.where = where
        if reason is not None:
            self.reason = reason
        super().__init__(f"{where}: {message}" if where else message)


class ValidationError(PayloadError):
    """A decoded reading breaks the contract (names, values, time, sizes)."""

    reason = "invalid_reading"


class DecodeError(PayloadError):
    """A payload cannot be decoded at all (syntax, encoding, structure)."""

    reason = "undecodable"


class InfluxError(TelemetryError):
    """Root of the InfluxDB client's failures; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class InfluxRetryableError(InfluxError):
    """Transient: connection refused, timeout, 429, 5xx. Retry later, honouring ``retry_after``."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status)


class InfluxRejectedError(InfluxError):
    """The server refused the data itself (4xx, partial write); retrying the same body cannot help.

    ``server_reason`` is the server's own explanation; ``dropped`` the number of points it dropped
    when it reported a partial write.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        server_reason: str = "",
        dropped: int | None = None,
    ) -> None:
        self.server_reason = server_reason
        self.dropped = dropped
        super().__init__(message, status=status)


class InfluxFatalError(InfluxError):
    """Credentials or configuration are wrong (401, 403, unknown database): stop, loudly."""
