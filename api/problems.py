"""RFC 9457 problem details for every error: domain errors, HTTP errors, validation, crashes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import i18n
from api.errors import ApiError
from api.i18n import N_
from api.routetable import allowed_methods

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:equipmon:problem:"
# Titles that are not an ApiError's: HTTP's own phrases and the handlers' below.
TITLES = (
    N_("Invalid request"), N_("Precondition failed"), N_("Internal server error"),
    N_("Not Found"), N_("Method Not Allowed"), N_("Unauthorized"), N_("Forbidden"),
    N_("Request Entity Too Large"), N_("Unsupported Media Type"), N_("Not Acceptable"),
)  # fmt: skip
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem-details response; `title` in the caller's language (Accept-Language).

    `type` is what programs match on and never changes with the language.
    """
    language = i18n.negotiate(request.headers.get("accept-language"))
    body = {
        "type": PROBLEM_TYPE + slug,
        "title": i18n.gettext(language)(title) if title else title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(
        jsonable_encoder(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type=MEDIA_TYPE,
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(
        exc.status, exc.slug, exc.title, exc.detail, request, headers=exc.headers, **exc.extra
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's only 400: a form or multipart body it could not parse. Every operation
        # documents 422 for a request that cannot be used; a 400 was documented nowhere.
        detail = exc.detail if isinstance(exc.detail, str) else "the body cannot be parsed"
        return problem(
            422, "invalid-request", "Invalid request", detail, request, where="body",
            reason="unparseable_body",
        )  # fmt: skip
    if exc.status_code == 405:
        # Each method of a path is its own route, and Starlette's 405 names only the first
        # route that matched the path: name them all.
        allowed = allowed_methods(request.app, request.url.path)
        headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
        exc = StarletteHTTPException(405, exc.detail, headers=headers)
    phrase = HTTPStatus(exc.status_code).phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem(exc.status_code, slug, phrase, detail, request, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"where": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:5])
    return problem(422, "invalid-request", "Invalid request", detail, request, errors=errors)


async def _stale(request: Request, exc: Exception) -> JSONResponse:
    # Two writers read the same version; the database refused the second UPDATE.
    return problem(
        412,
        "precondition-failed",
        "Precondition failed",
        "the resource was changed by someone else; fetch it again and retry",
        request,
    )


class CrashMiddleware:
    """Answers an unexpected exception with a 500 problem and keeps the connection usable.

    A handler for `Exception` runs in Starlette's ServerErrorMiddleware, which re-raises after
    answering; uvicorn then drops the keep-alive connection without `Connection: close`, so a
    client's next request on it fails. Caught here instead, the error is logged and answered,
    and the connection serves the next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; turn an exception before the answer started into a 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer went out: only closing the connection can end it
            response = problem(
                500, "internal-error", "Internal server error", "", Request(scope, receive)
            )
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on app (add CrashMiddleware as well)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StaleDataError, _stale)
