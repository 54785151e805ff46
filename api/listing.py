"""Fast list pages: keyset cursors, conditional GETs (304), and JSON straight from SQL rows.

A listing route builds its filtered ``SELECT`` of one table and hands it here with the
order's key columns (all descending, the last one unique). The page is answered:

* ``304 Not Modified`` when ``If-None-Match`` names the current ETag, which is the table's
  change counter (api/revisions.py) with the caller and the query: one indexed read;
* from the bytes already made under the same ETag, when this process made them
  (``PageCache``): the tag names everything the body depends on, so the same tag is the
  same body, and a poll that missed its 304 (a second client, a new tab) costs one read;
* otherwise as JSON bytes: the rows are read as Core rows (no ORM identity map), validated
  once into the page schema and dumped by pydantic-core in one call, instead of ORM objects,
  ``model_validate`` per row, FastAPI's second validation of the returned model, a Python
  dict tree and ``json.dumps``. The route still declares the schema as its response model,
  so the OpenAPI document is the same.

Keyset pagination is additive (DESIGN.md): ``limit``/``offset``/``total`` keep working;
every page also carries ``next_cursor`` (null on the last page). Passing it back as
``cursor`` continues after the last row seen, in constant time however deep, and stable
while rows are added; such a page skips ``total`` (null), which would cost a count of every
match. A cursor is bound to its listing and filters: another one, or a mangled one, is 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, cast

import sqlalchemy as sa
from fastapi import Query, Request, Response
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session

from api import revisions
from api.errors import InvalidError
from api.schemas.common import MAX_ID, PublicSchema
from api.security import Principal

T = TypeVar("T")

Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=500,
        description="`next_cursor` of the previous page: continue after it (keyset; `total` "
        "is then null). Not with `offset`.",
    ),
]


# OpenAPI: what a conditional GET may answer.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified since the ETag given in If-None-Match (no body)."}
}


class CursorPage(PublicSchema, Generic[T]):
    """One page of a list: the items, the total matching (null on a cursor page), the window
    asked for, and the cursor of the next page (null on the last)."""

    items: list[T]
    total: int | None
    limit: int
    offset: int
    next_cursor: str | None = None


_adapters: dict[type[BaseModel], TypeAdapter[Any]] = {}


def _adapter(schema: type[BaseModel]) -> TypeAdapter[Any]:
    adapter = _adapters.get(schema)
    if adapter is None:
        adapter = _adapters[schema] = TypeAdapter(CursorPage[schema])  # type: ignore[valid-type]
    return adapter


def _fingerprint(listing: str, request: Request) -> str:
    # The filters (every parameter but the window's) a cursor was made under.
    params = sorted(
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("cursor", "limit", "offset")
    )
    return hashlib.sha256(json.dumps([listing, params]).encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, values: Sequence[Any]) -> str:
    """An opaque cursor: the last row's key values and the listing's fingerprint."""
    keys = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"f": fingerprint, "k": keys}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str, columns: Sequence[Any]) -> list[Any]:
    """The key values in cursor; 422 if it is not one of this listing's cursors."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        keys = data["k"]
        if data["f"] != fingerprint or len(keys) != len(columns):
            raise ValueError("another listing's cursor")
        values: list[Any] = []
        for value, column in zip(keys, columns, strict=True):
            kind = column.type
            python_type = getattr(kind, "impl_instance", kind).python_type
            if python_type is datetime and isinstance(value, str):
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive time")
                values.append(parsed)
            elif python_type is int and type(value) is int and abs(value) <= MAX_ID:
                values.append(value)
            else:
                raise ValueError("bad key")
        return values
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidError(
            "not a cursor of this listing (use next_cursor of a page with the same filters)",
            where="cursor",
        ) from exc


class CountCache:
    """Totals of list pages by their ETag, per process (api.state.AppState.counts).

    A `COUNT(*)` reads every matching row's index entry: 0.3 ms at 10,000 work orders,
    tens of ms at 1,000,000, on every page. The ETag names the table's change counter, the
    caller (visibility) and every query parameter, so while it is unchanged the count is
    too; any committed write to the table moves the counter, and the next page counts
    again. Bounded: the oldest entries go first.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, tag: str) -> int | None:
        """The total counted under tag, if still remembered."""
        return self._totals.get(tag)

    def put(self, tag: str, total: int) -> None:
        """Remember the total counted under tag."""
        with self._lock:
            if len(self._totals) >= self.size:
                self._totals.pop(next(iter(self._totals)))
            self._totals[tag] = total


class PageCache:
    """Bodies of list pages by their ETag (and viewer), per process (api.state.AppState.pages).

    The ETag names the table's change counter, the caller's visibility and every query
    parameter, so one tag is one body: serving the bytes made under it skips the page's
    `SELECT`, its rows' JSON columns, pydantic's validation and the dump, ~70 % of a list
    request's work (session 11, docs/api.md). The key adds the user id, which visibility
    depends on (a technician's own orders) and the tag names only through the actor.
    Bounded by bytes (a page of 50 work orders is ~25-60 kB): the oldest entries go first.
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._bodies: dict[tuple[str, int | None], bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int | None]) -> bytes | None:
        """The body made under key, if still remembered."""
        return self._bodies.get(key)

    def put(self, key: tuple[str, int | None], body: bytes) -> None:
        """Remember a body (a body larger than the whole cache is not kept)."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            while self._bodies and self._bytes + len(body) > self.max_bytes:
                self._bytes -= len(self._bodies.pop(next(iter(self._bodies))))
            self._bodies[key] = body
            self._bytes += len(body)


def _total(
    state: Any, connection: sa.Connection, stmt: sa.Select[Any], table: sa.FromClause, tag: str
) -> int:
    cache: CountCache | None = getattr(state, "counts", None)
    known = cache.get(tag) if cache is not None else None
    if known is not None:
        return known
    count = stmt.with_only_columns(sa.func.count()).select_from(table)
    total = connection.execute(count).scalar() or 0
    if cache is not None:
        cache.put(tag, total)
    return total


def list_response(
    request: Request,
    session: Session,
    principal: Principal,
    stmt: sa.Select[Any],
    schema: type[BaseModel],
    *,
    table: sa.FromClause,
    keys: Sequence[Any],
    limit: int,
    offset: int,
    cursor: str | None,
) -> Response:
    """The page of stmt (table's rows, filtered, not yet ordered) as a response, or 304.

    Statements run on the session's connection as Core: no ORM compile state or identity map
    for rows that become JSON at once.
    """
    connection = session.connection()
    listing = request.url.path
    params = sorted(request.query_params.multi_items())
    # The revision first: a tag is never newer than the rows it is sent with.
    revision = revisions.current_one(connection, cast("sa.Table", table).name)
    tag = revisions.etag(revision, principal.actor, principal.role, listing, params)
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if revisions.matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    state = getattr(request.app.state, "equipmon", None)
    pages: PageCache | None = getattr(state, "pages", None)
    key = (tag, principal.user_id)
    cached = pages.get(key) if pages is not None else None
    if cached is not None:
        return Response(cached, media_type="application/json", headers=headers)
    fingerprint = _fingerprint(listing, request)
    total: int | None = None
    if cursor is not None:
        if offset:
            raise InvalidError("give either cursor or offset, not both", where="offset")
        after = decode_cursor(cursor, fingerprint, keys)
        bound = [sa.literal(v, type_=k.type) for v, k in zip(after, keys, strict=True)]
        stmt = stmt.where(sa.tuple_(*keys) < sa.tuple_(*bound))
    else:
        # The total does not depend on the window: pages of one filter share their count.
        filters = [(k, v) for k, v in params if k not in ("cursor", "limit", "offset")]
        count_tag = revisions.etag(revision, principal.actor, principal.role, listing, filters)
        total = _total(state, connection, stmt, table, count_tag)
    ordered = stmt.with_only_columns(*table.c).order_by(*(k.desc() for k in keys))
    result = connection.execute(ordered.limit(limit + 1).offset(offset))
    rows = [dict(row) for row in result.mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(fingerprint, [last[k.name] for k in keys])
    page = {
        "items": rows,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_cursor": next_cursor,
    }
    adapter = _adapter(schema)
    body = adapter.dump_json(adapter.validate_python(page))
    if pages is not None:
        pages.put(key, body)
    return Response(body, media_type="application/json", headers=headers)
