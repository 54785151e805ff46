"""Domain errors of the API; each carries its HTTP status and renders as RFC 9457 problem details.

Services raise these (never HTTPException); `api.problems` turns them into responses.
"""

from __future__ import annotations

from typing import Any

from api.i18n import N_


class ApiError(Exception):
    """Root of the API's errors: a status, a stable problem type slug and a human detail."""

    status = 500
    slug = "internal-error"
    title = N_("Internal server error")

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        super().__init__(detail)


class NotFoundError(ApiError):
    """The resource does not exist, or the caller may not see it."""

    status, slug, title = 404, "not-found", N_("Not found")


class ConflictError(ApiError):
    """The request clashes with the current state (duplicate name, still referenced)."""

    status, slug, title = 409, "conflict", N_("Conflict")


class IllegalTransitionError(ConflictError):
    """A state machine refused a transition; `allowed` lists the legal targets."""

    slug, title = "illegal-transition", N_("Illegal state transition")


class GoneError(ApiError):
    """The resource existed but is no longer usable (a used or expired action link)."""

    status, slug, title = 410, "gone", N_("Gone")


class PreconditionFailedError(ApiError):
    """If-Match named a version that is no longer current."""

    status, slug, title = 412, "precondition-failed", N_("Precondition failed")


class ForbiddenError(ApiError):
    """Authenticated, but this role or identity may not do this."""

    status, slug, title = 403, "forbidden", N_("Forbidden")


class UnauthorizedError(ApiError):
    """No valid credentials."""

    status, slug, title = 401, "unauthorized", N_("Unauthorized")


class InvalidError(ApiError):
    """Well-formed but semantically wrong input; `where` names the bad part."""

    status, slug, title = 422, "invalid-request", N_("Invalid request")


class PayloadTooLargeError(ApiError):
    """The body exceeds the configured limit."""

    status, slug, title = 413, "payload-too-large", N_("Payload too large")


class RateLimitedError(ApiError):
    """Too many requests from one client; Retry-After says when to come back."""

    status, slug, title = 429, "rate-limited", N_("Too many requests")


class UnavailableError(ApiError):
    """A backing service (InfluxDB) is down; retry after Retry-After seconds."""

    status, slug, title = 503, "service-unavailable", N_("Service unavailable")
