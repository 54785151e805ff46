"""Secrets: random bearer tokens stored as sha256, passwords as scrypt (stdlib hashlib only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

# scrypt cost: n=2**14, r=8 takes ~30 ms and 16 MiB here, OWASP's minimum recommendation;
# login is rare, and tokens (not passwords) authenticate every other request.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "eqm_"  # noqa: S105 (a prefix that makes leaked tokens greppable)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: role, a printable actor for the audit log, and bindings."""

    role: str
    actor: str
    user_id: int | None = None
    site_id: int | None = None
    # A bootstrap gateway token bound by site code (sites may be created after start-up).
    site_code: str | None = None
    token_id: int | None = None


def new_token() -> str:
    """A fresh random bearer token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 of a token: enough for 256-bit random secrets, and fast enough for every request."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An scrypt hash with its parameters and salt, as `scrypt$n$r$p$salt$hash`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encode = base64.b64encode
    return (
        f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
        f"{encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether password matches a stored scrypt hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


# Verifying against a dummy hash when the user does not exist keeps login timing uniform.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_hex(8))
