"""One place that maps errors to HTTP responses, and the one place that documents them.

Every error body but a validation failure's is `{"detail": "<message>"}`: `Error` in the
OpenAPI document. The routes declare theirs with `error(...)` and the shared dicts below
(router-wide where a whole router shares one); FastAPI documents its own 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from pydantic import BaseModel, Field

from opswire.runtime.rpc import RpcError

# The gateway's own NATS connection is away (reconnecting to another node, draining):
# an outage like a service that does not answer, so 503, never 500.
NATS_AWAY = (
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    OutboundBufferLimitError,
    StaleConnectionError,
)


class Error(BaseModel):
    """An error response: what went wrong, for a person to read."""

    detail: str = Field(description="What went wrong.")


# `responses=` of a route or router: status code -> OpenAPI response object.
Responses = dict[int | str, dict[str, Any]]


def error(description: str) -> dict[str, Any]:
    """One documented error response with the shared `Error` body."""
    return {"model": Error, "description": description}


# Every operation behind a bearer token (`CurrentClaims`/`CurrentUserId`).
BEARER: Responses = {
    401: error("Missing, invalid or expired access token, or its session ended (WWW-Authenticate: Bearer)")
}
# Every operation that calls a service over NATS: all of /api/v1.
SERVICES: Responses = {
    503: error("A service or the message bus did not answer in time, or a database is down; try again")
}
# Any id in the path, and OwnedServerId: someone else's is the same 404 as a missing one.
NOT_FOUND: Responses = {404: error("Not found, or not yours (the two are never told apart)")}


async def _rpc_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RpcError)
    detail = exc.detail if exc.detail is not None else exc.code
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == "unauthorized" else None
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse({"detail": detail}, status_code=exc.http_status, headers=headers)


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    # Only where and why: the refused input may be a password, megabytes long, or not even
    # encodable (a lone surrogate, NaN), and `ctx` can carry the same.
    loc = [part if isinstance(part, int) else _utf8(str(part)) for part in error.get("loc", ())]
    return {"type": str(error.get("type", "")), "loc": loc, "msg": _utf8(str(error.get("msg", "")))}


def _utf8(text: str) -> str:
    # A message or key may quote the input; a lone surrogate in it must not turn 422 into 500.
    return text.encode("utf-8", "replace").decode("utf-8")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": [_safe_error(err) for err in exc.errors()]}, status_code=422)


async def _nats_away(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Message bus unavailable, try again shortly"}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RpcError, _rpc_error)
    for error in NATS_AWAY:
        app.add_exception_handler(error, _nats_away)
    app.add_exception_handler(RequestValidationError, _validation_error)
