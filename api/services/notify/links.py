"""Signed, single-use, expiring action links: acknowledge an alert, accept a work order.

A link is `<id>.<sig>`: the row id of an `ActionLink` and an HMAC-SHA256, under the link
secret, of everything the row grants (id, action, entity, user, expiry). Changing any part
breaks the signature; the row records its one use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from api.models import ActionLink

ACTIONS = {"acknowledge_alert": "acknowledge-alert", "accept_work_order": "accept-work-order"}
PATH_ACTIONS = {path: action for action, path in ACTIONS.items()}


class LinkRefusedError(Exception):
    """The link cannot be used; `reason` is a key of texts ('expired', 'used', ...)."""

    def __init__(self, reason: str, link: ActionLink | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        # Plain values: the error outlives the session the link was read in.
        self.link_id = link.id if link else None
        self.user_id = link.user_id if link else None
        self.detail = detail


def _signature(secret: bytes, link: ActionLink) -> str:
    grant = (
        f"{link.id}:{link.action}:{link.entity_id}:{link.user_id}:"
        f"{int(link.expires_at.timestamp())}"
    )
    digest = hmac.new(secret, grant.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(  # noqa: PLR0917 (a grant reads best positionally)
    session: Session,
    secret: bytes,
    action: str,
    entity_id: int,
    user_id: int | None,
    label: str,
    now: datetime,
    ttl_s: float,
) -> str:
    """Create a link row and return its token."""
    link = ActionLink(
        action=action,
        entity_id=entity_id,
        user_id=user_id,
        label=label[:200],
        expires_at=(now + timedelta(seconds=ttl_s)).replace(microsecond=0),
        created_at=now,
    )
    session.add(link)
    session.flush()
    return f"{link.id}.{_signature(secret, link)}"


def url(public_url: str, action: str, token: str) -> str:
    """The URL people click."""
    return f"{public_url}/api/v1/action-links/{ACTIONS[action]}/{token}"


def check(
    session: Session, secret: bytes, token: str, action: str, now: datetime, *, lock: bool
) -> ActionLink:
    """The link a token grants for action, or LinkRefusedError (invalid, other action...)."""
    ident, _, signature = token.partition(".")
    if not ident.isdigit() or len(ident) > 12 or not signature:
        raise LinkRefusedError("invalid")
    link = session.get(ActionLink, int(ident), with_for_update=lock)
    if link is None or not hmac.compare_digest(signature, _signature(secret, link)):
        raise LinkRefusedError("invalid")
    if link.action != action:
        raise LinkRefusedError("other_action", link)
    if link.used_at is not None:
        raise LinkRefusedError("used", link)
    if link.expires_at <= now:
        raise LinkRefusedError("expired", link)
    return link
