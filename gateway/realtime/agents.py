"""`WS /api/v1/agents/ws`: the agent socket (DESIGN §2).

Agent sockets are the gateway's many long-lived connections, so they are
served by `AgentSocketPath`, an ASGI layer outside the REST stack: no routing,
dependency injection, exit stacks or REST middlewares (all of which pass
WebSockets through untouched) stay alive for the life of each socket. That is
about a quarter of what an idle agent connection costs in memory.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.realtime.agent_auth import authenticate_agent
from gateway.realtime.agent_session import AgentSession
from gateway.realtime.runtime import SHUTDOWN, Realtime
from gateway.realtime.sessions import ShuttingDown
from gateway.realtime.wsio import CloseRequest, refuse
from opswire.contract.events import AgentControl
from opswire.contract.frames import AuthSuccess

log = logging.getLogger(__name__)

AGENT_SOCKET_PATH = "/api/v1/agents/ws"


class AgentSocketPath:
    """The outermost layer of the app: agent sockets go straight to `agent_socket`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == AGENT_SOCKET_PATH:
            await agent_socket(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


async def agent_socket(websocket: WebSocket) -> None:
    """One agent: authenticate, take over the server's slot, then stream frames."""
    realtime: Realtime = websocket.app.state.realtime
    await websocket.accept()
    with realtime.handshake(websocket) as crowded:
        identity = crowded or await authenticate_agent(
            websocket, realtime.state.rpc, realtime.state.settings.auth_timeout_s
        )
    if identity is None:
        return
    if isinstance(identity, CloseRequest):
        await refuse(websocket, identity)
        return

    session = AgentSession(websocket, identity, realtime.agent_context)
    try:
        await realtime.sessions.add(session)
    except ShuttingDown:
        await refuse(websocket, SHUTDOWN)
        return
    extra = {"server_id": session.server_id, "connection_id": session.connection_id}
    reason = "disconnected"
    try:
        await _take_over(realtime, session)
        if await session.greet(AuthSuccess(server_id=session.server_id)):
            log.info("agent connected", extra=extra)
            ended = await session.serve()
            reason = ended.reason
    finally:
        await realtime.sessions.remove(session)
        await session.finish(reason)
        log.info("agent disconnected", extra={**extra, "reason": reason})


async def _take_over(realtime: Realtime, session: AgentSession) -> None:
    """Close older connections of this server on every gateway, then announce this one."""
    subjects = realtime.state.subjects
    control = AgentControl(
        reason="replaced", keep_connection_id=session.connection_id, connected_at=session.connected_at
    )
    try:
        await realtime.state.nc.publish(
            subjects.agent_control(session.server_id), control.model_dump_json().encode()
        )
    except Exception as exc:  # NATS away with a full buffer: an older socket may linger
        log.warning("replace notice not sent", extra={"server_id": session.server_id, "error": repr(exc)})
    realtime.presence.online(session.identity.server_id, session.connection_id)
