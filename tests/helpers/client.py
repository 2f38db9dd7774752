"""A user's tools in tests: the REST API with a token, agent and dashboard sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
import websockets
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = 10.0, interval_s: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy (for state with no event to await)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(interval_s)


class Api:
    """httpx against /api/v1, logged in as one user."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"/api/v1{path}", headers=self.headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    @classmethod
    async def new_user(cls, http: httpx.AsyncClient) -> Api:
        email = f"user-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery"
        reply = await http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert reply.status_code == 201, reply.text
        login = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return cls(http, login.json()["access_token"])

    async def new_server_with_key(self, name: str = "web-1") -> tuple[str, str]:
        server = await self.post("/servers", json={"name": name})
        assert server.status_code == 201, server.text
        key = await self.post("/api-keys", json={"server_id": server.json()["id"], "name": "agent"})
        assert key.status_code == 201, key.text
        return server.json()["id"], key.json()["key"]


def metrics_frame(**overrides: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "metrics",
        "cpu_percent": 12.5,
        "memory_percent": 40.0,
        "disk_usage": [{"path": "/", "total": 1000, "used": 400, "free": 600, "percent": 40.0}],
        "network": [{"interface": "eth0", "bytes_sent": 10, "bytes_recv": 20}],
        "timestamp": datetime.now(UTC).isoformat(),
    }
    frame.update(overrides)
    return frame


class Socket:
    """A JSON WebSocket client (agent or dashboard)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Socket:
        return cls(await websockets.connect(url, compression=None, max_size=None, **kwargs))

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else orjson.dumps(frame).decode())

    async def recv(self, timeout_s: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout_s)
        frame: dict[str, Any] = orjson.loads(raw)
        return frame

    async def recv_type(self, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next frame of type `kind`, skipping others (e.g. an initial latest sample)."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if frame.get("type") == kind:
                return frame

    async def closed_with(self, timeout_s: float = 10.0) -> int | None:
        """Wait for the server to close; the close code."""
        with_timeout = asyncio.wait_for(self.ws.wait_closed(), timeout_s)
        await with_timeout
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()

    @classmethod
    async def agent(cls, ws_url: str, api_key: str) -> Socket:
        sock = await cls.open(f"{ws_url}/api/v1/agents/ws")
        await sock.send({"type": "auth", "api_key": api_key})
        reply = await sock.recv()
        assert reply["type"] == "auth_success", reply
        return sock

    @classmethod
    async def dashboard(cls, ws_url: str, kind: str, server_id: str, token: str) -> Socket:
        sock = await cls.open(f"{ws_url}/api/v1/ws/{kind}/{server_id}")
        await sock.send({"type": "auth", "token": token})
        reply = await sock.recv()
        assert reply["type"] == "auth_success", reply
        return sock


def log_frame(
    message: str, level: str = "info", timestamp: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "log",
        "level": level,
        "message": message,
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        **extra,
    }


Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


@contextlib.asynccontextmanager
async def answering(agent: Socket, answer: Answer) -> AsyncIterator[list[dict[str, Any]]]:
    """Script the agent: each `command`/`docker_command` frame is recorded in the yielded list
    and answered with `answer(frame)` (None: never answer). Other frames are ignored."""
    seen: list[dict[str, Any]] = []

    async def loop() -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = orjson.loads(await agent.ws.recv())
                if frame.get("type") in ("command", "docker_command"):
                    seen.append(frame)
                    if (reply := answer(frame)) is not None:
                        await agent.send(reply)

    task = asyncio.create_task(loop())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Events:
    """A core NATS subscription a test awaits messages on (JSON payloads)."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    @classmethod
    async def watch(cls, nc: NatsClient, subject: str) -> Events:
        sub = await nc.subscribe(subject)
        await nc.flush()  # the server knows the subscription before the test acts
        return cls(sub)

    async def next(self, timeout_s: float = 10.0) -> tuple[str, dict[str, Any]]:
        msg = await self.sub.next_msg(timeout=timeout_s)
        data: dict[str, Any] = orjson.loads(msg.data)
        return msg.subject, data

    async def next_data(self, timeout_s: float = 10.0) -> dict[str, Any]:
        return (await self.next(timeout_s))[1]

    async def stop(self) -> None:
        await self.sub.unsubscribe()
