"""Queries of the notification tables: channels by owner, the delivery outbox."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.notify.models import Channel, Delivery
from opswire.contract.types import utc_now


async def list_channels(session: AsyncSession, user_id: uuid.UUID) -> list[Channel]:
    rows = await session.execute(
        select(Channel)
        .where(col(Channel.user_id) == user_id)
        .order_by(col(Channel.created_at), col(Channel.id))
    )
    return list(rows.scalars())


async def get_channel(session: AsyncSession, user_id: uuid.UUID, channel_id: uuid.UUID) -> Channel | None:
    rows = await session.execute(
        select(Channel).where(col(Channel.id) == channel_id, col(Channel.user_id) == user_id)
    )
    return rows.scalars().first()


async def enqueue(
    session: AsyncSession, user_id: uuid.UUID, event_key: str, title: str, body: dict[str, Any]
) -> int:
    """Queue one delivery per enabled channel of the user; an event queued before is skipped."""
    channels = await session.execute(
        select(col(Channel.id)).where(col(Channel.user_id) == user_id, col(Channel.enabled))
    )
    rows = [
        {
            "channel_id": channel_id,
            "event_key": event_key,
            "title": title,
            "body": body,
            "attempts": 0,
            "next_attempt_at": utc_now(),
            "created_at": utc_now(),
        }
        for channel_id in channels.scalars()
    ]
    if rows:
        await session.execute(insert(Delivery).on_conflict_do_nothing(), rows)
    return len(rows)


async def claim_due(session: AsyncSession, lease: timedelta, limit: int) -> list[tuple[Delivery, str]]:
    """Due deliveries with their channel URL, leased to this replica for `lease`
    (another replica skips them; if this one dies they fall due again)."""
    now = utc_now()
    rows = await session.execute(
        select(Delivery, col(Channel.url))
        .join(Channel, col(Channel.id) == col(Delivery.channel_id))
        .where(col(Delivery.next_attempt_at) <= now)
        .order_by(col(Delivery.next_attempt_at))
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    )
    claimed = [(delivery, url) for delivery, url in rows.all()]
    for delivery, _ in claimed:
        delivery.next_attempt_at = now + lease
    return claimed


async def delivered(session: AsyncSession, delivery: Delivery) -> None:
    await session.execute(
        delete(Delivery).where(
            col(Delivery.channel_id) == delivery.channel_id,
            col(Delivery.event_key) == delivery.event_key,
        )
    )
    await session.execute(
        update(Channel).where(col(Channel.id) == delivery.channel_id).values(last_sent_at=utc_now())
    )


async def failed(session: AsyncSession, delivery: Delivery, error: str, retry_at: datetime | None) -> None:
    """Record the channel's last error; retry at `retry_at`, or give up (None)."""
    where = (
        col(Delivery.channel_id) == delivery.channel_id,
        col(Delivery.event_key) == delivery.event_key,
    )
    if retry_at is None:
        await session.execute(delete(Delivery).where(*where))
    else:
        await session.execute(
            update(Delivery).where(*where).values(attempts=delivery.attempts + 1, next_attempt_at=retry_at)
        )
    await session.execute(
        update(Channel)
        .where(col(Channel.id) == delivery.channel_id)
        .values(last_error=error, last_error_at=utc_now())
    )


async def drop_pending(session: AsyncSession, channel_id: uuid.UUID) -> None:
    """A disabled channel sends nothing more, not even what was queued for it."""
    await session.execute(delete(Delivery).where(col(Delivery.channel_id) == channel_id))


async def next_due(session: AsyncSession) -> datetime | None:
    rows = await session.execute(
        select(col(Delivery.next_attempt_at)).order_by(col(Delivery.next_attempt_at)).limit(1)
    )
    return rows.scalars().first()
