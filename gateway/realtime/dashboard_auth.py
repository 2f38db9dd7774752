"""The dashboard handshake: an access token first, then may this user see the server."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from starlette.websockets import WebSocket

from gateway.realtime.agent_auth import SERVICE_UNAVAILABLE
from gateway.realtime.wsio import (
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    CloseRequest,
    closing,
    receive_auth_frame,
)
from gateway.state import GatewayState
from opswire.contract import rpc as calls
from opswire.contract.frames import DashboardAuth, parse_dashboard_frame
from opswire.runtime.rpc import RpcError
from opswire.runtime.tokens import InvalidToken, TokenClaims

log = logging.getLogger(__name__)

BAD_TOKEN = closing(POLICY_VIOLATION, "invalid_token", "Invalid or expired token")
# "Does not exist" and "not yours" look the same (DESIGN §8).
NOT_FOUND = closing(POLICY_VIOLATION, "not_found", "Server not found")
TOKEN_EXPIRED = closing(POLICY_VIOLATION, "invalid_token", "Token expired", reason="token_expired")
SESSION_ENDED = closing(POLICY_VIOLATION, "invalid_token", "Session ended", reason="session_ended")
AUTH_UNAVAILABLE = closing(TRY_AGAIN_LATER, "unavailable", SERVICE_UNAVAILABLE, reason="auth_unavailable")


@dataclass(frozen=True)
class DashboardGrant:
    """Who watches which server, on the strength of which access token."""

    server_id: uuid.UUID
    claims: TokenClaims


async def authorize_dashboard(
    ws: WebSocket, state: GatewayState, server_id: str
) -> DashboardGrant | CloseRequest | None:
    """The server to watch, or why to refuse; None if the peer left before authenticating."""
    frame = await receive_auth_frame(
        ws,
        state.settings.auth_timeout_s,
        parse_dashboard_frame,
        DashboardAuth,
        BAD_TOKEN,
        '{"type": "auth", "token": ...}',
    )
    if not isinstance(frame, DashboardAuth):
        return frame
    ws.state.resume_since = frame.since  # the logs socket's resume point (gateway/realtime/resume.py)
    return await check_access(state, frame.token, server_id)


async def check_access(
    state: GatewayState, token: str, server_id: str, user_id: uuid.UUID | None = None
) -> DashboardGrant | CloseRequest:
    """May the holder of `token` see `server_id`? Asked at the handshake and at each renewal
    (which passes the socket's `user_id`: a renewal must not change who is watching)."""
    try:
        claims = state.tokens.claims(token, "access")
    except InvalidToken:
        return BAD_TOKEN
    if user_id is not None and claims.user_id != user_id:
        return BAD_TOKEN
    if state.revoked.is_revoked(claims.session_id):
        return SESSION_ENDED
    try:
        server = uuid.UUID(server_id)
    except ValueError:
        return NOT_FOUND
    try:
        await state.rpc.call(
            calls.AUTH_AUTHORIZE, calls.ByUserServer(user_id=claims.user_id, server_id=server)
        )
    except RpcError as exc:
        if exc.code in ("not_found", "forbidden", "invalid"):
            return NOT_FOUND
        if exc.code == "unauthorized":
            return BAD_TOKEN
        if exc.code == "unavailable":
            return AUTH_UNAVAILABLE
        log.error("dashboard authorization failed", extra={"code": exc.code})
        return closing(INTERNAL_ERROR, "internal", "Internal error", reason="auth_error")
    return DashboardGrant(server, claims)
