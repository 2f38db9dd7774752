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
    claims_auth,
    receive_first,
)
from opswire.contract import rpc as calls
from opswire.contract.frames import (
    INVALID_API_KEY,
    INVALID_FORMAT,
    AgentAuth,
    FrameError,
    parse_agent_frame,
)
from opswire.contract.resources import AgentIdentity
from opswire.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

SERVICE_UNAVAILABLE = "Service unavailable, try again later"
_DENIED = {"unauthorized", "not_found", "invalid", "forbidden"}


def _bad_key() -> CloseRequest:
    return CloseRequest(POLICY_VIOLATION, INVALID_API_KEY, "invalid_key")


async def authenticate_agent(
    ws: WebSocket, rpc: RpcClient, timeout_s: float
) -> AgentIdentity | CloseRequest | None:
    """The agent's identity, or why to refuse it; None if it left before sending anything."""
    try:
        raw = await receive_first(ws, timeout_s)
    except TimeoutError:
        return CloseRequest(
            POLICY_VIOLATION,
            "Authentication timeout",
            "auth_timeout",
            f"send an auth frame within {timeout_s:g} s of connecting",
        )
    if raw is None:
        return None
    try:
        frame = parse_agent_frame(raw)
    except FrameError as exc:
        if claims_auth(raw):  # a missing or malformed key is a bad key, not junk
            return _bad_key()
        return CloseRequest(POLICY_VIOLATION, INVALID_FORMAT, "invalid_frame", exc.detail)
    if not isinstance(frame, AgentAuth):
        return CloseRequest(
            POLICY_VIOLATION,
            "Authentication required",
            "unauthenticated",
            'the first frame must be {"type": "auth", "api_key": ...}',
        )
    try:
        data = await rpc.call(calls.AUTH_VERIFY_KEY, calls.VerifyKey(api_key=frame.api_key))
    except RpcError as exc:
        if exc.code in _DENIED:
            return _bad_key()
        if exc.code == "unavailable":
            return CloseRequest(TRY_AGAIN_LATER, SERVICE_UNAVAILABLE, "auth_unavailable")
        log.error("api key verification failed", extra={"code": exc.code})
        return CloseRequest(INTERNAL_ERROR, "Internal error", "auth_error")
    try:
        return AgentIdentity.model_validate(data)
    except ValidationError:
        log.error("auth.verify_key returned a malformed identity")
        return CloseRequest(INTERNAL_ERROR, "Internal error", "auth_error")
