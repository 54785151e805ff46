"""SQL models of work requests from people without accounts, and the links their labels carry."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, utcnow


class RequestLink(Base):
    """The unguessable token of an asset's (or a whole site's) public request page.

    QR labels print the token, never the asset id; rotating it (a label was copied, or put up
    where it should not be) replaces the value and every old label stops working.
    """

    __tablename__ = "request_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # None: the site-wide request page (the requester says where the problem is).
    asset_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assets.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None]


class WorkRequest(Base):
    """A problem someone reported: new until facilities accept, merge or decline it.

    The requester follows it with a status token they were given (stored as its sha256); an
    accepted or merged request is linked to its work order, and its status follows the order.
    """

    __tablename__ = "work_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    category: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.Text)
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    urgency: Mapped[str] = mapped_column(sa.String(16), default="normal")
    requester_name: Mapped[str] = mapped_column(sa.String(200), default="")
    requester_phone: Mapped[str] = mapped_column(sa.String(40), default="")
    photo: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    photo_type: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="new", index=True)
    work_order_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("work_orders.id", ondelete="SET NULL"), index=True
    )
    decline_reason: Mapped[str | None] = mapped_column(sa.Text)
    status_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # "public" for the web form; the API caller's actor for a helpdesk system.
    source: Mapped[str] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(16), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    triaged_at: Mapped[datetime | None]
    triaged_by: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
