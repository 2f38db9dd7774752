"""`WS /api/v1/ws/metrics/{server_id}` and `/ws/logs/{server_id}` (DESIGN §3)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket

from gateway.realtime.agent_auth import SERVICE_UNAVAILABLE
from gateway.realtime.dashboard_auth import authorize_dashboard
from gateway.realtime.dashboard_lease import DashboardLease
from gateway.realtime.hub import TOO_SLOW, Crowded, Stream, Viewer
from gateway.realtime.resume import ResumingViewer, replay_logs, since_of
from gateway.realtime.runtime import SHUTDOWN, Realtime
from gateway.realtime.wsio import (
    TRY_AGAIN_LATER,
    CloseRequest,
    close,
    closing,
    receive_raw,
    refuse,
    send_error,
    send_frame,
    send_text,
)
from opswire.contract import rpc as calls
from opswire.contract.frames import (
    INVALID_FORMAT,
    DashboardAuthSuccess,
    FrameError,
    Ping,
    Pong,
    parse_dashboard_frame,
)
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

router = APIRouter()

_METRICS_HEAD = '{"type":"metrics"'


@router.websocket("/ws/metrics/{server_id}")
async def metrics_socket(websocket: WebSocket, server_id: str) -> None:
    """Live samples of one server, the latest known first, and its alerts."""
    await _serve(websocket, server_id, "metrics")


@router.websocket("/ws/logs/{server_id}")
async def logs_socket(websocket: WebSocket, server_id: str) -> None:
    """Live log lines of one server; with `since` in the auth frame, the stored ones after it first."""
    await _serve(websocket, server_id, "logs")


async def _serve(ws: WebSocket, server_id: str, stream: Stream) -> None:
    realtime: Realtime = ws.app.state.realtime
    await ws.accept()
    with realtime.handshake(ws) as crowded:
        grant = crowded or await authorize_dashboard(ws, realtime.state, server_id)
    if grant is None:
        return
    if isinstance(grant, CloseRequest):
        await refuse(ws, grant)
        return
    server = grant.server_id
    sid = str(server)
    since = since_of(ws) if stream == "logs" else None
    settings = realtime.state.settings
    kind = Viewer if since is None else ResumingViewer
    viewer = kind(settings.dashboard_queue_size, settings.dashboard_stall_s)
    if not realtime.track(viewer):
        await refuse(ws, SHUTDOWN)
        return
    lease = DashboardLease(realtime.state, grant, viewer)  # ends the viewer at expiry/revocation
    try:
        try:
            await realtime.hub.join(stream, sid, viewer)  # subscribe first, then ask for the latest
        except Crowded as crowded:
            await refuse(ws, crowded.request)
            return
        except Exception as exc:  # NATS unreachable right now
            log.warning("dashboard not subscribed", extra={"server_id": sid, "error": repr(exc)})
            await refuse(ws, closing(TRY_AGAIN_LATER, "unavailable", SERVICE_UNAVAILABLE))
            return
        if not await send_frame(ws, DashboardAuthSuccess(server_id=sid)):
            return
        if isinstance(viewer, ResumingViewer) and since is not None:
            if not await replay_logs(
                ws, realtime.state.rpc, server, since, settings.logs_resume_limit, viewer
            ):
                return
        after = await _send_latest(ws, realtime, server) if stream == "metrics" else None
        await _stream(ws, viewer, after, lease)
    finally:
        lease.release()
        realtime.untrack(viewer)
        await realtime.hub.leave(stream, sid, viewer)


async def _send_latest(ws: WebSocket, realtime: Realtime, server: uuid.UUID) -> datetime | None:
    """Send the latest stored sample, if any; returns its timestamp."""
    try:
        data = await realtime.state.rpc.call(calls.METRICS_LATEST, calls.ByServer(server_id=server))
    except RpcError as exc:
        if exc.code != "not_found":  # ingest away: live samples still flow
            log.warning("latest sample unavailable", extra={"server_id": str(server), "code": exc.code})
        return None
    if not isinstance(data, dict):
        return None
    await send_text(ws, orjson.dumps({"type": "metrics", "data": data}).decode())
    return _timestamp(data)


def _timestamp(data: dict[str, Any]) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(data["timestamp"]))
    except (KeyError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _stream(ws: WebSocket, viewer: Viewer, after: datetime | None, lease: DashboardLease) -> None:
    """Run writer and reader until the dashboard leaves, fails, or is ended."""
    writer = asyncio.create_task(_write(ws, viewer, after))
    reader = asyncio.create_task(_read(ws, lease))
    ended = asyncio.create_task(viewer.ended.wait())
    tasks = (writer, reader, ended)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    request = viewer.close
    if request is None:
        return
    if request.error is None:  # too slow: no error frame, it would only queue behind the rest
        await close(ws, request.code, request.reason)
    else:
        await refuse(ws, request)


async def _write(ws: WebSocket, viewer: Viewer, after: datetime | None) -> None:
    while True:
        frame = await viewer.next()
        if after is not None and frame.startswith(_METRICS_HEAD):
            # Live samples that raced the latest one: skip any not newer than it.
            try:
                data = orjson.loads(frame).get("data")
            except orjson.JSONDecodeError:
                data = None
            stamp = _timestamp(data) if isinstance(data, dict) else None
            if stamp is not None and stamp <= after:
                continue
            after = None
        # Samples conflate while a send is slow; only a dashboard that stops reading is dropped.
        if not await send_text(ws, frame, timeout_s=viewer.stall_s):
            viewer.end(TOO_SLOW)
            return


async def _read(ws: WebSocket, lease: DashboardLease) -> None:
    while (raw := await receive_raw(ws)) is not None:
        try:
            frame = parse_dashboard_frame(raw)
        except FrameError as exc:
            await send_error(ws, "invalid_format", INVALID_FORMAT, exc.detail)
            continue
        if isinstance(frame, Ping):
            await send_frame(ws, Pong())
        else:  # a fresh token: renewal (DESIGN §3)
            await lease.renew(ws, frame)
