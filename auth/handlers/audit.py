"""The audit log: the audit consumer (JetStream -> PostgreSQL) and auth.audit.list."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from nats.aio.msg import Msg
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.batch import consume_batch
from auth.models import AuditRecord
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.contract.resources import AuditEntry
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.keyset import AnyRow, newest_first_page
from opswire.runtime.permissions import AUTH_AUDIT
from opswire.runtime.rpc import Page, page_budget

AUDIT_BATCH = 200


def register(rt: AuthRuntime) -> None:
    @rt.on_ready
    async def start() -> None:
        await rt.consume(audit_consumer(rt))

    @rpc_handler(rt.broker, rt.subjects, calls.AUDIT_LIST)
    async def list_audit(req: calls.AuditList) -> Page:
        """The user's audit entries, newest first, in pages under `max_payload`."""
        query = select(AuditRecord).where(col(AuditRecord.user_id) == req.user_id)
        async with rt.sessions() as session:
            return await newest_first_page(
                session,
                query,
                col(AuditRecord.timestamp),
                col(AuditRecord.id),
                uuid.UUID,
                req,
                _audit_json,
                page_budget(rt.nc.max_payload),
            )


def _audit_json(row: AnyRow) -> bytes:
    return AuditEntry.model_validate(row[0], from_attributes=True).model_dump_json().encode()


async def store_audit(session: AsyncSession, events: Sequence[AuditEvent]) -> None:
    # Keyed by the event's id: a redelivered event (ack lost after commit) is stored once.
    rows = [
        {
            "id": e.id,
            "user_id": e.user_id,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
            "timestamp": e.timestamp,
        }
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
