"""`/alerts` and `/alerts/thresholds`: alert rules and the alerts they raised, from ingest.

The threshold routes are declared first and alert ids are UUIDs, so
`/alerts/thresholds...` can never be taken for an alert.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gateway.deps import Audit, CurrentUserId, Rpc
from gateway.errors import BEARER, NOT_FOUND, error
from opswire.contract import rpc as calls
from opswire.contract.resources import (
    AlertPublic,
    AlertStatus,
    ThresholdCreate,
    ThresholdPublic,
    ThresholdUpdate,
)
from opswire.runtime.rpc import RpcError

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=BEARER)

ServerFilter = Annotated[uuid.UUID | None, Query(description="Only this server's.")]


# --- thresholds ------------------------------------------------------------------------------


@router.get("/thresholds")
async def list_thresholds(
    user_id: CurrentUserId, rpc: Rpc, server_id: ServerFilter = None
) -> list[ThresholdPublic]:
    """The user's alert thresholds."""
    request = calls.ThresholdList(user_id=user_id, server_id=server_id)
    return await rpc.call_typed(calls.THRESHOLDS_LIST, request)


@router.post(
    "/thresholds",
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 409: error("The per-user threshold limit is reached")},
)
async def create_threshold(
    body: ThresholdCreate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ThresholdPublic:
    """Add a threshold on one of the user's servers."""
    # ingest knows nothing of ownership: auth answers not_found (404) for others' servers.
    owned = calls.ByUserServer(user_id=user_id, server_id=body.server_id)
    await rpc.call_typed(calls.AUTH_AUTHORIZE, owned)
    request = calls.ThresholdCreateFor(user_id=user_id, **body.model_dump())
    threshold = await rpc.call_typed(calls.THRESHOLDS_CREATE, request)
    await audit.record(
        user_id, "threshold.create", f"threshold:{threshold.id}", {"server_id": str(body.server_id)}
    )
    return threshold


@router.put("/thresholds/{threshold_id}", responses=NOT_FOUND)
async def update_threshold(
    threshold_id: uuid.UUID, body: ThresholdUpdate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ThresholdPublic:
    """Change some fields of a threshold; the ones left out (or null) stay as they are.
    The whole object as GET returned it is fine too: `server_id` must then be unchanged."""
    if body.id is not None and body.id != threshold_id:
        raise RpcError("invalid", "id does not match the threshold in the URL")
    # server_id goes along for ingest to check against the stored one; it is never changed.
    changes = body.model_dump(mode="json", exclude_none=True, exclude={"id", "created_at"})
    request = {"user_id": str(user_id), "threshold_id": str(threshold_id), **changes}
    threshold = await rpc.call_typed(calls.THRESHOLDS_UPDATE, request)
    fields = sorted(set(changes) - {"server_id"})
    await audit.record(user_id, "threshold.update", f"threshold:{threshold_id}", {"fields": fields})
    return threshold


@router.delete("/thresholds/{threshold_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_threshold(
    threshold_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> Response:
    """Delete a threshold."""
    request = calls.ThresholdRef(user_id=user_id, threshold_id=threshold_id)
    await rpc.call_typed(calls.THRESHOLDS_DELETE, request)
    await audit.record(user_id, "threshold.delete", f"threshold:{threshold_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- alerts ------------------------------------------------------------------------------------


@router.get("")
async def list_alerts(
    user_id: CurrentUserId,
    rpc: Rpc,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    server_id: ServerFilter = None,
    limit: Annotated[int, Query(ge=1, le=calls.MAX_HISTORY_LIMIT)] = calls.DEFAULT_HISTORY_LIMIT,
) -> list[AlertPublic]:
    """The user's alerts, newest first."""
    request = calls.AlertList(user_id=user_id, status=status_, server_id=server_id, limit=limit)
    return await rpc.call_typed(calls.ALERTS_LIST, request)


@router.post("/{alert_id}/resolve", responses=NOT_FOUND)
async def resolve_alert(alert_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> AlertPublic:
    """Resolve an alert by hand (resolving a resolved alert changes nothing)."""
    alert = await rpc.call_typed(calls.ALERTS_RESOLVE, calls.AlertRef(user_id=user_id, alert_id=alert_id))
    await audit.record(user_id, "alert.resolve", f"alert:{alert_id}", {"server_id": str(alert.server_id)})
    return alert
