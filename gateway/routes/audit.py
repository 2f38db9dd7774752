"""`/audit`: the user's own audit log (extension of DESIGN §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gateway.deps import CurrentUserId, Rpc
from gateway.errors import BEARER
from gateway.routes.params import CursorQuery, paged_response
from opswire.contract import rpc as calls
from opswire.contract.resources import AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"], responses=BEARER)


@router.get("", response_model=list[AuditEntry])
async def list_audit(
    http: Request,
    user_id: CurrentUserId,
    rpc: Rpc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """What the user did, newest first; `Link: rel="next"` leads on."""
    request = calls.AuditList(user_id=user_id, limit=limit, cursor=cursor)
    return paged_response(http, await rpc.call_paged(calls.AUDIT_LIST, request))
