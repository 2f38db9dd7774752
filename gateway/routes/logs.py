"""`/logs/{server_id}`: stored log lines, newest first, from ingest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.deps import OwnedServerId, Rpc
from gateway.errors import BEARER, NOT_FOUND
from gateway.routes.params import (
    CursorQuery,
    HistoryLimit,
    LevelQuery,
    TimeWindow,
    paged_response,
    time_window,
)
from opswire.contract import rpc as calls
from opswire.contract.telemetry import LogLine

# Every route is scoped to one of the user's servers (OwnedServerId).
router = APIRouter(prefix="/logs", tags=["logs"], responses={**BEARER, **NOT_FOUND})


@router.get("/{server_id}", response_model=list[LogLine])
async def query_logs(
    http: Request,
    server_id: OwnedServerId,
    rpc: Rpc,
    window: Annotated[TimeWindow, Depends(time_window)],
    level: LevelQuery = None,
    limit: HistoryLimit = calls.DEFAULT_HISTORY_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Log lines at or above `level` in the window, newest first; `Link: rel="next"` leads on."""
    request = calls.LogsQuery(
        server_id=server_id,
        level=level,
        start=window.start,
        end=window.end,
        limit=limit,
        cursor=cursor,
    )
    return paged_response(http, await rpc.call_paged(calls.LOGS_QUERY, request))
