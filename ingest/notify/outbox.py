"""Alert events (OPSWIRE_ALERTS, durable INGEST_NOTIFY) -> the owner's notification outbox.

Only queueing happens here, in ingest's own database; sending is the sender's job,
so a receiver that is down never holds up the stream or ingest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.models import Alert
from ingest.notify import message
from ingest.notify import store as notify_store
from opswire.contract.events import AlertEvent


def queue_alert_events(
    public_url: str, wake: Callable[[], None]
) -> Callable[[AsyncSession, list[AlertEvent]], Awaitable[Callable[[], Awaitable[None]] | None]]:
    async def process(
        session: AsyncSession, events: list[AlertEvent]
    ) -> Callable[[], Awaitable[None]] | None:
        owners = await session.execute(
            select(col(Alert.id), col(Alert.user_id)).where(col(Alert.id).in_([e.id for e in events]))
        )
        owner_of = {alert_id: user_id for alert_id, user_id in owners.all()}
        queued = 0
        for event in events:
            user_id = owner_of.get(event.id)
            if user_id is None:  # not one of ours (published by someone else): nothing to send
                continue
            queued += await notify_store.enqueue(
                session, user_id, f"{event.id}:{event.event}",
                message.title(event), message.body(event, public_url),
            )

        async def after_commit() -> None:
            wake()

        return after_commit if queued else None

    return process
