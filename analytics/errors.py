"""The analytics service's error tree: one root, raised with ``from`` at boundaries.

``AnalyticsError`` is the root; ``ApiError`` covers every exchange with the API (posting alerts
and status, reading limits, outcomes and meters), ``ModelRejectedError`` a stored model that
must not be loaded. Errors from InfluxDB are telemetry's (``telemetry.InfluxError``).
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Root of every error the analytics service raises itself."""


class ApiError(AnalyticsError):
    """An exchange with the API failed."""


class AlertPostError(ApiError):
    """A post failed; ``retry`` says whether sending it again may succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class BadItemError(AlertPostError):
    """The API refused a batch because of one item (e.g. an asset it does not know)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message, retry=False)
        self.index = index


class ApiReadError(ApiError):
    """A read from the API failed (unreachable, or an unexpected answer)."""


class ModelRejectedError(AnalyticsError):
    """A stored model that must not be used (wrong version, hash, shape); the reason is the text."""
