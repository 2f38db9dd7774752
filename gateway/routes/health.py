"""`/health` (the process is alive) and `/ready` (NATS and every service answer)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import State
from gateway.errors import error
from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

PING_TIMEOUT_S = 2.0


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _ping(rpc: RpcClient, method: calls.RpcMethod[calls.Ping]) -> str:
    try:
        await rpc.call_typed(method, calls.Ping(), timeout_s=PING_TIMEOUT_S)
    except RpcError as exc:
        return exc.code
    return "ok"


@router.get(
    "/ready",
    # The 503 body is an Error with the 200's fields beside `detail`.
    responses={503: error("NATS or a service is not answering; the body says which")},
)
async def ready(state: State) -> JSONResponse:
    """Readiness: NATS connected and every service answering its ping within ~2 s."""
    body: dict[str, Any]
    if not state.nc.is_connected:
        body = {"status": "not_ready", "nats": "disconnected", "services": {}}
        return JSONResponse({"detail": "NATS is not connected", **body}, status_code=503)
    # Pinged together, so /ready takes ~2 s at worst rather than 2 s per service.
    results = await asyncio.gather(*(_ping(state.rpc, method) for method in calls.PINGS))
    services = {method.service: result for method, result in zip(calls.PINGS, results, strict=True)}
    down = sorted(name for name, result in services.items() if result != "ok")
    if down:
        log.info("not ready", extra={"services_down": down})
        body = {"status": "not_ready", "nats": "connected", "services": services}
        return JSONResponse({"detail": f"Not answering: {', '.join(down)}", **body}, status_code=503)
    return JSONResponse({"status": "ready", "nats": "connected", "services": services})
