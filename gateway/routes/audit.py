"""`/audit`: the user's own audit log (extension of DESIGN §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.deps import CurrentUserId, Rpc
from opswire.contract import rpc as calls
from opswire.contract.resources import AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
async def list_audit(
    user_id: CurrentUserId, rpc: Rpc, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditEntry]:
    """What the user did, newest first."""
    return await rpc.call_typed(calls.AUDIT_LIST, calls.AuditList(user_id=user_id, limit=limit))
