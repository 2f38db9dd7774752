"""JetStream consumers (presence, audit) and the gateways' presence heartbeat.

Both consumers pull batches from a durable consumer shared by all replicas
(opswire.runtime.jetstream) and apply a batch in one transaction, acking after commit. A
message that can never be valid is terminated and logged so it does not block
the stream; when the database fails the batch is NAKed with a delay and comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from faststream.nats import NatsMessage
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.models import AuditRecord
from auth.presence import apply_heartbeat, apply_presence
from auth.runtime import AuthRuntime
from opswire.contract.events import AuditEvent, PresenceEvent, PresenceHeartbeat
from opswire.contract.types import utc_now
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.nats import from_stream
from opswire.runtime.permissions import AUTH_AUDIT, AUTH_PRESENCE

log = logging.getLogger(__name__)

Event = TypeVar("Event", bound=BaseModel)
Apply = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]

PRESENCE_BATCH = 100
AUDIT_BATCH = 200
RETRY_DELAY_S = 2.0


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
        log.warning(
            "batch not stored; will be redelivered", exc_info=True, extra={"consumer": consumer}
        )
        for msg, _ in valid:
            await msg.nak(delay=RETRY_DELAY_S)
        return
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
                log.warning(
                    "event not stored; will be redelivered",
                    exc_info=True,
                    extra={"consumer": consumer},
                )
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


async def store_audit(session: AsyncSession, events: Sequence[AuditEvent]) -> None:
    # Keyed by the event's id: a redelivered event (ack lost after commit) is stored once.
    rows = [
        {"id": e.id, "user_id": e.user_id, "action": e.action, "target": e.target,
         "detail": e.detail, "timestamp": e.timestamp}
        for e in events
    ]
    await session.execute(insert(AuditRecord).on_conflict_do_nothing(), rows)


def presence_consumer(rt: AuthRuntime) -> PullConsumer:
    spec = PullConsumerSpec(
        stream=rt.subjects.events_stream,
        subject=rt.subjects.all_presence,
        durable=AUTH_PRESENCE,
        batch=PRESENCE_BATCH,
        # Never more than one batch in flight: a NAKed batch comes back before anything
        # newer, so connects and disconnects are applied in the order they happened.
        max_ack_pending=PRESENCE_BATCH,
    )

    async def handle(raw: Sequence[Msg]) -> None:
        await consume_batch(rt, spec.durable, raw, PresenceEvent, apply_presence)

    return PullConsumer(spec, handle)


def audit_consumer(rt: AuthRuntime) -> PullConsumer:
    spec = PullConsumerSpec(
        stream=rt.subjects.audit_stream,
        subject=rt.subjects.all_audit,
        durable=AUTH_AUDIT,
        batch=AUDIT_BATCH,
    )

    async def handle(raw: Sequence[Msg]) -> None:
        await consume_batch(rt, spec.durable, raw, AuditEvent, store_audit)

    return PullConsumer(spec, handle)


def register_heartbeat(rt: AuthRuntime) -> None:
    @rt.broker.subscriber(rt.subjects.presence_heartbeat(), queue="auth", title="auth-heartbeat")
    async def on_heartbeat(msg: NatsMessage) -> None:
        """A gateway's list of live agents: they were seen now."""
        if from_stream(msg.reply_to):
            log.warning("ignored a stream message pushed onto the heartbeat subject")
            return
        try:
            heartbeat = PresenceHeartbeat.model_validate_json(msg.body)
        except ValidationError:
            log.warning(
                "ignoring invalid presence heartbeat", extra={"subject": msg.raw_message.subject}
            )
            return
        try:
            async with rt.sessions.begin() as session:
                await apply_heartbeat(session, heartbeat.server_ids, utc_now())
        except Exception:
            # The next heartbeat (a few seconds away) carries the same news.
            log.warning(
                "presence heartbeat not applied",
                exc_info=True,
                extra={"gateway_id": heartbeat.gateway_id},
            )
