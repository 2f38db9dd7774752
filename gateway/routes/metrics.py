"""`/metrics/{server_id}`: the latest sample and history, from ingest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from gateway.deps import OwnedServerId, Rpc
from gateway.errors import BEARER, NOT_FOUND, error
from gateway.routes.params import (
    CursorQuery,
    HistoryLimit,
    TimeWindow,
    json_passthrough,
    paged_response,
    time_window,
)
from opswire.contract import rpc as calls
from opswire.contract.telemetry import MetricsSample

# Every route is scoped to one of the user's servers (OwnedServerId).
router = APIRouter(prefix="/metrics", tags=["metrics"], responses={**BEARER, **NOT_FOUND})


@router.get(
    "/{server_id}",
    response_model=MetricsSample,
    responses={404: error("Unknown server, or no sample yet")},
)
async def latest_sample(server_id: OwnedServerId, rpc: Rpc) -> Response:
    """The latest sample, bare."""
    return json_passthrough(await rpc.call_typed(calls.METRICS_LATEST, calls.ByServer(server_id=server_id)))


@router.get("/{server_id}/history", response_model=list[MetricsSample])
async def sample_history(
    http: Request,
    server_id: OwnedServerId,
    rpc: Rpc,
    window: Annotated[TimeWindow, Depends(time_window)],
    limit: HistoryLimit = calls.DEFAULT_HISTORY_LIMIT,
    cursor: CursorQuery = None,
    resolution: Annotated[
        calls.Resolution | None,
        Query(
            description="raw samples, or 1m/10m/1h points (avg, with min and max); "
            "default: the finest that keeps the window to about 1000 points."
        ),
    ] = None,
) -> Response:
    """Samples (or tier points) with start <= timestamp < end (default: the last hour),
    ascending, newest `limit`; `Link: rel="next"` leads to the older ones."""
    request = calls.MetricsHistory(
        server_id=server_id,
        start=window.start,
        end=window.end,
        limit=limit,
        cursor=cursor,
        resolution=resolution,
    )
    return paged_response(http, await rpc.call_paged(calls.METRICS_HISTORY, request))
