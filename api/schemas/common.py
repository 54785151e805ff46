"""Shared schema pieces: bounded text, UTC datetimes, pages, problem details."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

T = TypeVar("T")

Role = Literal["admin", "facilities", "technician", "gateway", "service"]
Severity = Literal["low", "medium", "high", "critical"]
Criticality = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}

# PostgreSQL refuses NUL in text; refusing it here turns that into a 422 instead of a 500.
NO_NUL = r"^[^\x00]*$"
# Names double as InfluxDB tag values and URL parts: printable, no slashes or wildcards.
CODE = r"^[^\x00-\x20/+#\\][^\x00-\x1f/+#\\]*$"
MAX_ID = 2_147_483_647  # SQL INTEGER; larger ids cannot exist, and PostgreSQL errors on them


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 (reads like a type)
    """A string field of bounded length without NUL characters; required if min_length > 0,
    else defaulting to the empty string."""
    if min_length:
        return Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)
    return Field("", max_length=max_length, pattern=NO_NUL)


def OptText(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 (reads like a type)
    """An optional (default None) string field of bounded length without NUL characters."""
    return Field(None, min_length=min_length, max_length=max_length, pattern=NO_NUL)


def Keep(**constraints: Any) -> Any:  # noqa: N802 (reads like a type)
    """A PATCH field that may be left out (default None: keep the value) but not set to null:
    the field's own type, which lacks None, refuses an explicit null with 422."""
    return Field(None, **constraints)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("datetime out of range") from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Code = Annotated[str, Field(min_length=1, max_length=128, pattern=CODE)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Schema(BaseModel):
    """Base of every schema: no NaN/inf (JSON cannot carry them), ORM objects readable."""

    model_config = ConfigDict(from_attributes=True, allow_inf_nan=False, extra="forbid")


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    # A field that may be left out but not set to null defaults to None in Python only; the
    # document shows no `default: null` next to a non-nullable type (clients would send it).
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None and "anyOf" not in prop:
            del prop["default"]


class UpdateSchema(Schema):
    """Base of PATCH bodies: absent fields stay as they are, and `null` is no value.

    A field typed without `None` (``title: str = OptText(...)``) may be left out, but an
    explicit `null` is refused with 422 by its type, so no NOT NULL column ever sees one. A
    field typed ``X | None`` is nullable in the database, and `null` clears it. Routes apply
    ``model_dump(exclude_unset=True)``.
    """

    model_config = ConfigDict(
        from_attributes=True,
        allow_inf_nan=False,
        extra="forbid",
        json_schema_extra=_drop_null_defaults,
    )


class PublicSchema(Schema):
    """Base of response schemas (extra keys are not an error there)."""

    model_config = ConfigDict(from_attributes=True, allow_inf_nan=False, extra="ignore")


class Page(PublicSchema, Generic[T]):
    """One page of a list: the items, the total matching, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Problem(PublicSchema):
    """RFC 9457 problem details; extension members (`where`, `allowed`...) may follow."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["urn:equipmon:problem:illegal-transition"])
    title: str
    status: int
    detail: str = ""
    instance: str = ""
