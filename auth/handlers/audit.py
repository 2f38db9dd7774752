"""auth.audit.list: the user's audit log, newest first."""

from __future__ import annotations

from auth import store
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.resources import AuditEntry
from opswire.runtime.faststream_rpc import rpc_handler


def register(rt: AuthRuntime) -> None:
    @rpc_handler(rt.broker, rt.subjects, calls.AUDIT_LIST)
    async def list_audit(req: calls.AuditList) -> list[AuditEntry]:
        """The user's audit entries, newest first."""
        async with rt.sessions() as session:
            records = await store.list_audit(session, req.user_id, req.limit)
        return [AuditEntry.model_validate(r, from_attributes=True) for r in records]
