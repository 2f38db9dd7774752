"""Applying a batch of JetStream events in one transaction, shared by the auth consumers.

Each consumer pulls batches from a durable consumer shared by all replicas
(opswire.runtime.jetstream) and applies a batch in one transaction, acking after commit. A
message that can never be valid is terminated and logged so it does not block
the stream; when the database fails the batch is NAKed with a delay and comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.runtime import AuthRuntime
from opswire.runtime.outage import OutageLog, database_unavailable

log = logging.getLogger(__name__)

Event = TypeVar("Event", bound=BaseModel)
Apply = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]

RETRY_DELAY_S = 2.0
_outages: dict[str, OutageLog] = {}


def _outage(consumer: str) -> OutageLog:
    """One outage report per consumer: a database outage is one line per interval."""
    if consumer not in _outages:
        _outages[consumer] = OutageLog(log, f"{consumer}: events not stored, will be redelivered")
    return _outages[consumer]


def _not_stored(consumer: str, exc: Exception, message: str) -> None:
    if database_unavailable(exc):
        _outage(consumer).failed(exc, consumer=consumer)
    else:
        log.warning(message, exc_info=exc, extra={"consumer": consumer})


async def consume_batch(
    rt: AuthRuntime, consumer: str, raw: Sequence[Msg], model: type[Event], apply: Apply[Event]
) -> None:
    """Validate, apply in one transaction, then ack; terminate poison, NAK on database failure."""
    valid: list[tuple[Msg, Event]] = []
    for msg in raw:
        try:
            valid.append((msg, model.model_validate_json(msg.data)))
        except ValidationError as exc:
            log.warning(
                "dropping invalid event",
                extra={"consumer": consumer, "subject": msg.subject, "errors": exc.error_count()},
            )
            await msg.term()
    if not valid:
        return
    try:
        async with rt.sessions.begin() as session:
            await apply(session, [event for _, event in valid])
    except Exception as exc:
        if refused_by_database(exc):
            # Some event the database refuses (e.g. a NUL in a string): isolate it, keep the rest.
            await _one_by_one(rt, consumer, valid, apply)
            return
        _not_stored(consumer, exc, "batch not stored; will be redelivered")
        for msg, _ in valid:
            await msg.nak(delay=RETRY_DELAY_S)
        return
    _outage(consumer).recovered(consumer=consumer)
    for msg, _ in valid:
        await msg.ack()


async def _one_by_one(
    rt: AuthRuntime, consumer: str, valid: Sequence[tuple[Msg, Event]], apply: Apply[Event]
) -> None:
    for msg, event in valid:
        try:
            async with rt.sessions.begin() as session:
                await apply(session, [event])
        except Exception as exc:
            if not refused_by_database(exc):
                _not_stored(consumer, exc, "event not stored; will be redelivered")
                await msg.nak(delay=RETRY_DELAY_S)
                continue
            log.warning(
                "dropping event the database refuses",
                extra={"consumer": consumer, "subject": msg.subject},
            )
            await msg.term()
        else:
            await msg.ack()


def refused_by_database(exc: BaseException) -> bool:
    """The data itself was refused (SQLSTATE class 22 data exception or 23 constraint):
    retrying the same event cannot succeed, unlike a lost connection or a timeout."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return sqlstate[:2] in {"22", "23"}
