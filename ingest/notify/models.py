"""Tables of the notifications: the user's channels and the outbox of deliveries.

A delivery row is written when an alert event is consumed (in the same step that
acks it) and removed once sent or given up, so nothing accepted is lost when a
receiver is down, and a slow receiver never holds up storing telemetry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ingest.models import SCHEMA
from opswire.contract.types import utc_now


def _ts(nullable: bool) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Channel(SQLModel, table=True):
    """Where a user's alerts go: one Apprise URL. `url` is the secret and never leaves ingest."""

    __tablename__ = "notification_channels"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(index=True)
    name: str = Field(max_length=255)
    url: str
    enabled: bool = True
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_sent_at: datetime | None = _ts(nullable=True)
    last_error: str | None = None
    last_error_at: datetime | None = _ts(nullable=True)


class Delivery(SQLModel, table=True):
    """One notification still to send to one channel (the outbox)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        Index("ix_notification_deliveries_due", "next_attempt_at"),
        {"schema": SCHEMA},
    )

    channel_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid,
            ForeignKey(f"{SCHEMA}.notification_channels.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    # `<alert id>:<fired|resolved>`: a redelivered alert event queues nothing twice.
    event_key: str = Field(primary_key=True, max_length=80)
    title: str
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    attempts: int = 0
    next_attempt_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
