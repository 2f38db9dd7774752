"""Small, failure-tolerant WebSocket operations shared by agent and dashboard sockets.

A peer can vanish or stop reading at any moment; these helpers never raise
for that and never wait unboundedly (uvicorn's send blocks while the peer's
buffers are full).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson
from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect

from opswire.contract.frames import INVALID_FORMAT, ErrorCode, ErrorFrame, FrameError, encode

log = logging.getLogger(__name__)

AuthFrame = TypeVar("AuthFrame", bound=BaseModel)

SEND_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0

# Close codes (DESIGN §9 'Frames and close codes').
POLICY_VIOLATION = 1008
GOING_AWAY = 1001
TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
REPLACED = 4000

_GONE = (WebSocketDisconnect, RuntimeError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class CloseRequest:
    """Why a socket closes: the close code, a reason for events, the error frame to send first."""

    code: int
    reason: str
    error: ErrorFrame | None = None


def closing(
    close_code: int, error: ErrorCode, message: str, detail: str | None = None, *, reason: str | None = None
) -> CloseRequest:
    """A close preceded by an error frame; the reason for events is the error code unless given."""
    frame = ErrorFrame(code=error, message=message, detail=detail)
    return CloseRequest(close_code, reason or error, frame)


Raw = str | bytes


async def send_text(ws: WebSocket, text: str, timeout_s: float | None = SEND_TIMEOUT_S) -> bool:
    """Send one text frame; False if the peer is gone or (with a timeout) too slow."""
    try:
        if timeout_s is None:
            await ws.send_text(text)
        else:
            await asyncio.wait_for(ws.send_text(text), timeout_s)
    except _GONE:
        return False
    return True


async def send_frame(ws: WebSocket, frame: BaseModel, timeout_s: float = SEND_TIMEOUT_S) -> bool:
    return await send_text(ws, encode(frame), timeout_s)


async def send_error(ws: WebSocket, code: ErrorCode, message: str, detail: str | None = None) -> bool:
    return await send_frame(ws, ErrorFrame(code=code, message=message, detail=detail))


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    try:
        await asyncio.wait_for(ws.close(code, reason), CLOSE_TIMEOUT_S)
    except _GONE:
        pass


async def refuse(ws: WebSocket, request: CloseRequest) -> None:
    """Error frame (if any), then close with the request's code."""
    if request.error is not None:
        await send_frame(ws, request.error)
    await close(ws, request.code)


def claims_auth(raw: Raw) -> bool:
    """Whether a frame that failed validation was meant as `auth` (a bad credential, not junk)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "auth"


async def receive_raw(ws: WebSocket) -> Raw | None:
    """The next text or binary frame, or None once the peer has gone."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    return bytes(message.get("bytes") or b"")


async def receive_first(ws: WebSocket, timeout_s: float) -> Raw | None:
    """The first frame within `timeout_s`; None if the peer left; raises TimeoutError."""
    return await asyncio.wait_for(receive_raw(ws), timeout_s)


async def receive_auth_frame(
    ws: WebSocket,
    timeout_s: float,
    parse: Callable[[Raw], BaseModel],
    auth_frame: type[AuthFrame],
    bad_credentials: CloseRequest,
    example: str,
) -> AuthFrame | CloseRequest | None:
    """The first frame of a socket, which must be an auth frame, or why to refuse the socket.

    None if the peer left first. An auth frame whose credential is missing or
    malformed is `bad_credentials`, not junk (DESIGN §2).
    """
    try:
        raw = await receive_first(ws, timeout_s)
    except TimeoutError:
        return closing(
            POLICY_VIOLATION,
            "auth_timeout",
            "Authentication timeout",
            f"send an auth frame within {timeout_s:g} s of connecting",
        )
    if raw is None:
        return None
    try:
        frame = parse(raw)
    except FrameError as exc:
        return (
            bad_credentials
            if claims_auth(raw)
            else closing(
                POLICY_VIOLATION, "invalid_format", INVALID_FORMAT, exc.detail, reason="invalid_frame"
            )
        )
    if not isinstance(frame, auth_frame):
        return closing(
            POLICY_VIOLATION,
            "unauthenticated",
            "Authentication required",
            f"the first frame must be {example}",
        )
    return frame
