"""The audit log: the audit consumer (JetStream -> PostgreSQL) and auth.audit.list."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.batch import consume_batch
from auth.models import AuditRecord
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.contract.resources import AuditEntry
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.permissions import AUTH_AUDIT

AUDIT_BATCH = 200


def register(rt: AuthRuntime) -> None:
    @rt.on_ready
    async def start() -> None:
        await rt.consume(audit_consumer(rt))

    @rpc_handler(rt.broker, rt.subjects, calls.AUDIT_LIST)
    async def list_audit(req: calls.AuditList) -> list[AuditEntry]:
        """The user's audit entries, newest first."""
        async with rt.sessions() as session:
            records = await store.list_audit(session, req.user_id, req.limit)
        return [AuditEntry.model_validate(r, from_attributes=True) for r in records]


async def store_audit(session: AsyncSession, events: Sequence[AuditEvent]) -> None:
    # Keyed by the event's id: a redelivered event (ack lost after commit) is stored once.
    rows = [
        {"id": e.id, "user_id": e.user_id, "action": e.action, "target": e.target,
         "detail": e.detail, "timestamp": e.timestamp}
        for e in events
    ]
    await session.execute(insert(AuditRecord).on_conflict_do_nothing(), rows)


def audit_consumer(rt: AuthRuntime) -> PullConsumer:
    spec = PullConsumerSpec(
        stream=rt.subjects.audit_stream,
        subject=rt.subjects.all_audit,
        durable=AUTH_AUDIT,
        batch=AUDIT_BATCH,
        replicas=rt.settings.stream_replicas,
    )

    async def handle(raw: Sequence[Msg]) -> None:
        await consume_batch(rt, spec.durable, raw, AuditEvent, store_audit)

    return PullConsumer(spec, handle)
