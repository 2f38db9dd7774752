"""The agent handshake: the first frame must be `auth` with a valid API key (DESIGN §2, §9)."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.websockets import WebSocket

from gateway.realtime.wsio import (
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    CloseRequest,
    closing,
    receive_auth_frame,
)
from opswire.contract import rpc as calls
from opswire.contract.frames import INVALID_API_KEY, AgentAuth, parse_agent_frame
from opswire.contract.resources import AgentIdentity
from opswire.runtime.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

SERVICE_UNAVAILABLE = "Service unavailable, try again later"
_DENIED = {"unauthorized", "not_found", "invalid", "forbidden"}


def _bad_key() -> CloseRequest:
    return closing(POLICY_VIOLATION, "invalid_key", INVALID_API_KEY)


async def authenticate_agent(
    ws: WebSocket, rpc: RpcClient, timeout_s: float
) -> AgentIdentity | CloseRequest | None:
    """The agent's identity, or why to refuse it; None if it left before sending anything."""
    frame = await receive_auth_frame(
        ws, timeout_s, parse_agent_frame, AgentAuth, _bad_key(), '{"type": "auth", "api_key": ...}'
    )
    if not isinstance(frame, AgentAuth):
        return frame
    try:
        # The address goes along so a rejected key is logged with it (never the key).
        client = ws.client.host if ws.client else None
        data = await rpc.call(calls.AUTH_VERIFY_KEY, calls.VerifyKey(api_key=frame.api_key, client=client))
    except RpcError as exc:
        if exc.code in _DENIED:
            return _bad_key()
        if exc.code == "unavailable":
            return closing(TRY_AGAIN_LATER, "unavailable", SERVICE_UNAVAILABLE, reason="auth_unavailable")
        log.error("api key verification failed", extra={"code": exc.code})
        return closing(INTERNAL_ERROR, "internal", "Internal error", reason="auth_error")
    try:
        return AgentIdentity.model_validate(data)
    except ValidationError:
        log.error("auth.verify_key returned a malformed identity")
        return closing(INTERNAL_ERROR, "internal", "Internal error", reason="auth_error")
