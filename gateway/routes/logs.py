"""`/logs/{server_id}`: stored log lines, newest first, from ingest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gateway.deps import OwnedServerId, Rpc
from gateway.routes.params import (
    HistoryLimit,
    LevelQuery,
    TimeWindow,
    json_passthrough,
    time_window,
)
from opswire.contract import rpc as calls
from opswire.contract.telemetry import LogLine

router = APIRouter(prefix="/logs", tags=["logs"])


@router.get("/{server_id}", response_model=list[LogLine])
async def query_logs(
    server_id: OwnedServerId,
    rpc: Rpc,
    window: Annotated[TimeWindow, Depends(time_window)],
    level: LevelQuery = None,
    limit: HistoryLimit = calls.DEFAULT_HISTORY_LIMIT,
) -> Response:
    """Log lines at or above `level` in the window, newest first."""
    request = calls.LogsQuery(
        server_id=server_id, level=level, start=window.start, end=window.end, limit=limit
    )
    return json_passthrough(await rpc.call_typed(calls.LOGS_QUERY, request))
