"""Small helpers for the auth tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient

T = TypeVar("T")
PASSWORD = "correct horse battery"


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout_s: float = 3.0
) -> T:
    """Poll `probe` until `check` holds; the last value is returned, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s; last value: {value!r}")
        await asyncio.sleep(0.02)


async def new_user(rpc: RpcClient, email: str | None = None) -> uuid.UUID:
    email = email or f"u{uuid.uuid4().hex[:8]}@example.com"
    user = await rpc.call(calls.AUTH_REGISTER, {"email": email, "password": PASSWORD})
    return uuid.UUID(user["id"])


async def new_server(rpc: RpcClient, user_id: uuid.UUID, name: str = "web-1") -> dict[str, Any]:
    server: dict[str, Any] = await rpc.call(calls.SERVERS_CREATE, {"user_id": str(user_id), "name": name})
    return server


async def get_server(rpc: RpcClient, user_id: uuid.UUID, server_id: str) -> dict[str, Any]:
    server: dict[str, Any] = await rpc.call(
        calls.SERVERS_GET, {"user_id": str(user_id), "server_id": server_id}
    )
    return server
