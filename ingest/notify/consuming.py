"""The batch handler of an event consumer that updates ingest's tables (presence events).

Per message: a payload that can never be handled is terminated (logged, it must not
block the stream); the rest is handled in one transaction, then acked. If the
database fails, the whole batch is nak'ed with a delay: redelivered, never lost,
and handling it twice changes nothing (both handlers are idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.writer import DB_UNAVAILABLE

log = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseModel)
Process = Callable[[AsyncSession, list[E]], Awaitable[Callable[[], Awaitable[None]] | None]]


def event_batches(
    name: str,
    model: type[E],
    sessions: async_sessionmaker[AsyncSession],
    process: Process[E],
    retry_delay_s: float,
) -> Callable[[Sequence[Msg]], Awaitable[None]]:
    """`process(session, events)` runs inside the transaction and may return what to do
    once it committed (publish alert events, wake the sender)."""

    async def handle(msgs: Sequence[Msg]) -> None:
        accepted: list[tuple[Msg, E]] = []
        for msg in msgs:
            try:
                accepted.append((msg, model.model_validate_json(msg.data)))
            except ValidationError as exc:
                log.warning(
                    "%s: refused message",
                    name,
                    extra={"consumer": name, "subject": msg.subject, "errors": exc.error_count()},
                )
                await msg.term()
        if not accepted:
            return
        try:
            async with sessions.begin() as session:
                after_commit = await process(session, [event for _, event in accepted])
        except DB_UNAVAILABLE as exc:
            log.warning(
                "%s: database unavailable, batch redelivered",
                name,
                extra={"consumer": name, "error": repr(exc)},
            )
            for msg, _ in accepted:
                await msg.nak(delay=retry_delay_s)
            return
        if after_commit is not None:
            await after_commit()
        for msg, _ in accepted:
            await msg.ack()

    return handle
