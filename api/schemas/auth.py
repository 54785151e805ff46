"""Schemas of users, API tokens and login."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.common import (
    Id,
    Keep,
    OptText,
    PublicSchema,
    Role,
    Schema,
    Text,
    UpdateSchema,
    UtcDatetime,
)

USERNAME = r"^[A-Za-z0-9_.@\-]+$"


class UserCreate(Schema):
    """A new user; the password is stored as an scrypt hash and never returned."""

    username: str = Field(min_length=1, max_length=64, pattern=USERNAME, examples=["ana"])
    display_name: str = Text(200)
    role: Role = Field(examples=["technician"])
    password: str = Field(min_length=8, max_length=256, pattern=r"^[^\x00]*$")


class UserUpdate(UpdateSchema):
    """Changes to a user; `null` is refused (leave a field out to keep it)."""

    display_name: str = OptText(200)
    role: Role = Keep()
    password: str = Keep(min_length=8, max_length=256, pattern=r"^[^\x00]*$")
    active: bool = Keep()


class UserPublic(PublicSchema):
    """A user (without the password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime


class LoginRequest(Schema):
    """Username and password, exchanged for a bearer token."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$")
    password: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00]*$")


class TokenCreate(Schema):
    """A new machine token (gateway: bound to one site; service) or a token for a user."""

    name: str = Text(200, 1)
    role: Role | None = Field(None, description="Role of a machine token; omit with user_id.")
    user_id: Id | None = Field(None, description="Issue the token for this user (their role).")
    site_id: Id | None = Field(None, description="Gateway tokens: the only site they may write.")
    expires_at: UtcDatetime | None = None


class TokenPublic(PublicSchema):
    """A token's metadata (the secret is shown once, at creation)."""

    id: int
    name: str
    role: str
    user_id: int | None
    site_id: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    """A new token with its secret: store it now, it cannot be shown again."""

    token: str
