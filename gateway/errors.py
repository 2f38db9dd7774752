"""One place that maps service errors to HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from opswire.rpc import RpcError


async def _rpc_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RpcError)
    detail = exc.detail if exc.detail is not None else exc.code
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == "unauthorized" else None
    return JSONResponse({"detail": detail}, status_code=exc.http_status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RpcError, _rpc_error)
