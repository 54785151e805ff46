"""Small helpers shared by routes: fetch-or-404 and integrity errors as 409."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import ConflictError, NotFoundError

M = TypeVar("M")


def get_or_404(session: Session, model: type[M], ident: int, *, lock: bool = False) -> M:
    """The row with this primary key, or NotFoundError naming the resource."""
    row = session.get(model, ident, with_for_update=lock)
    if row is None:
        name = getattr(model, "__tablename__", model.__name__).rstrip("s").replace("_", " ")
        raise NotFoundError(f"{name} {ident} does not exist")
    return row


def apply(row: Any, changes: dict[str, Any]) -> None:
    """Set attributes from a dict of changes."""
    for name, value in changes.items():
        setattr(row, name, value)


@contextmanager
def conflicts_as_409(what: str) -> Iterator[None]:
    """Turn a unique or foreign-key violation at commit into a 409 naming what clashed."""
    try:
        yield
    except IntegrityError as exc:
        raise ConflictError(f"{what} clashes with an existing one or is still referenced") from exc
