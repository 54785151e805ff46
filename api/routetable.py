"""The app's route table, flattened: every path with its methods and the route behind it.

FastAPI 0.16x keeps included routers nested (`app.router.routes` holds branches); this walks
them once through FastAPI's public `iter_route_contexts`. The 405 answer's `Allow` header and
the role × route test both read the app's routes from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One path template, its methods (empty for a mount) and the route that serves it."""

    path: str
    methods: frozenset[str]
    route: BaseRoute
    regex: re.Pattern[str]


def route_table(app: FastAPI) -> list[RouteEntry]:
    """Every route of app in matching order (mounts included, with no methods)."""
    entries = []
    for context in iter_route_contexts(app.router.routes):
        regex = getattr(context, "path_regex", None)
        if context.path is None or regex is None:
            continue
        entries.append(
            RouteEntry(
                context.path, frozenset(context.methods or ()), context.original_route, regex
            )
        )
    return entries


def allowed_methods(app: FastAPI, path: str) -> frozenset[str]:
    """The methods any route serves on a concrete path."""
    methods: set[str] = set()
    for entry in route_table(app):
        if entry.regex.match(path):
            methods |= entry.methods
    return frozenset(methods)
