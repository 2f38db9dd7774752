"""WebSocket test support: a real gateway with its app in reach, stub services, clients."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import nats
import orjson
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app
from gateway.realtime import Realtime
from gateway.settings import GatewaySettings
from opswire.contract import rpc as calls
from opswire.contract.resources import AgentIdentity
from opswire.contract.subjects import Subjects
from opswire.runtime.rpc import error_reply, ok_reply, rpc_subject
from tests.helpers.backends import Namespace
from tests.helpers.gateway import gateway_settings, running_gateway

TIMEOUT_S = 5.0


@dataclass
class Gateway:
    url: str
    app: FastAPI
    subjects: Subjects
    nats_url: str

    @property
    def realtime(self) -> Realtime:
        realtime: Realtime = self.app.state.realtime
        return realtime

    def ws(self, path: str) -> str:
        return self.url.replace("http://", "ws://", 1) + "/api/v1" + path


@asynccontextmanager
async def gateway(
    nats_url: str, namespace: Namespace, jwt_secret: str, **overrides: object
) -> AsyncIterator[Gateway]:
    """`running_gateway`, keeping hold of the app so tests can look at its realtime side."""
    apps: list[FastAPI] = []

    def capture(settings: GatewaySettings) -> FastAPI:
        apps.append(create_app(settings))
        return apps[-1]

    settings = gateway_settings(nats_url, namespace, jwt_secret, **overrides)
    with mock.patch("tests.helpers.gateway.create_app", capture):
        async with running_gateway(settings) as url:
            yield Gateway(url, apps[0], namespace.subjects, nats_url)


@dataclass
class Services:
    """Stand-ins for auth and ingest: small nats-py responders on the real RPC subjects."""

    nc: NatsClient
    subjects: Subjects
    keys: dict[str, AgentIdentity] = field(default_factory=dict)
    owners: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    latest: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    _subs: list[Subscription] = field(default_factory=list)

    def add_agent(self, server_id: uuid.UUID | None = None) -> tuple[str, AgentIdentity]:
        key = "ow_" + secrets.token_urlsafe(24)
        identity = AgentIdentity(
            server_id=server_id or uuid.uuid4(), key_id=uuid.uuid4(), user_id=uuid.uuid4()
        )
        self.keys[key] = identity
        return key, identity

    async def start(self, *methods: calls.RpcMethod[Any]) -> None:
        handlers: dict[calls.RpcMethod[Any], Callable[[Msg], Awaitable[None]]] = {
            calls.AUTH_VERIFY_KEY: self._verify_key,
            calls.AUTH_AUTHORIZE: self._authorize,
            calls.METRICS_LATEST: self._latest,
        }
        subjects = [rpc_subject(self.subjects, method) for method in methods or tuple(handlers)]
        for subject, method in zip(subjects, methods or tuple(handlers), strict=True):
            self._subs.append(await self.nc.subscribe(subject, cb=_answering_probes(handlers[method])))
        await self.nc.flush()
        assert self.nc.connected_url is not None
        await until_others_see(self.nc.connected_url.geturl(), subjects)

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def _verify_key(self, msg: Msg) -> None:
        identity = self.keys.get(orjson.loads(msg.data)["api_key"])
        if identity is None:
            await msg.respond(error_reply("unauthorized", "Invalid API key"))
        else:
            await msg.respond(ok_reply(identity))

    async def _authorize(self, msg: Msg) -> None:
        request = calls.ByUserServer.model_validate_json(msg.data)
        if (request.user_id, request.server_id) in self.owners:
            await msg.respond(ok_reply(None))
        else:
            await msg.respond(error_reply("not_found", "Server not found"))

    async def _latest(self, msg: Msg) -> None:
        request = calls.ByServer.model_validate_json(msg.data)
        sample = self.latest.get(request.server_id)
        if sample is None:
            await msg.respond(error_reply("not_found", "No metrics yet"))
        else:
            await msg.respond(ok_reply(sample))


PROBE = "Opswire-Test-Probe"


def _answering_probes(handler: Callable[[Msg], Awaitable[None]]) -> Callable[[Msg], Awaitable[None]]:
    async def answer(msg: Msg) -> None:
        if msg.headers and PROBE in msg.headers:
            await msg.respond(b"")
        else:
            await handler(msg)

    return answer


async def until_others_see(nats_url: str, subjects: list[str]) -> None:
    """Return once other connections see the subscriptions on these request subjects.

    nats-server 2.15 can answer "no responders" to a request from another connection for
    a moment after the subscriber's flush returned (about 1 in 150 tries here), so a
    subscriber is ready for the test only when a request from a second connection reaches
    it. The probe carries an empty body: stubs answer it (`PROBE` header), a gateway's
    agent inbox refuses it as an invalid delivery, which is an answer too.
    """
    other = await nats.connect(nats_url)
    try:
        for subject in subjects:
            while True:
                try:
                    await other.request(subject, b"", timeout=TIMEOUT_S, headers={PROBE: "1"})
                    break
                except NoRespondersError:
                    await asyncio.sleep(0)
    finally:
        await other.close()


def metrics_frame(timestamp: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "metrics",
        "cpu_percent": 12.5,
        "memory_percent": 40.0,
        "disk_usage": [{"path": "/", "total": 100, "used": 40, "free": 60, "percent": 40.0}],
        "network": [{"interface": "eth0", "bytes_sent": 1, "bytes_recv": 2}],
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        **extra,
    }


def log_frame(message: str = "disk almost full", **extra: Any) -> dict[str, Any]:
    return {
        "type": "log",
        "level": "WARNING",
        "message": message,
        "timestamp": datetime.now(UTC).isoformat(),
        "source": "syslog",
        **extra,
    }


def seconds_ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def recv(ws: ClientConnection, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    data = await asyncio.wait_for(ws.recv(), timeout_s)
    frame: dict[str, Any] = json.loads(data)
    return frame


async def recv_until_closed(ws: ClientConnection, timeout_s: float = TIMEOUT_S) -> list[dict[str, Any]]:
    """Every frame until the server closes (the code is then in `ws.close_code`)."""
    frames: list[dict[str, Any]] = []

    async def read() -> None:
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            return

    await asyncio.wait_for(read(), timeout_s)
    return frames


@asynccontextmanager
async def agent(gw: Gateway, api_key: str) -> AsyncIterator[ClientConnection]:
    """An authenticated agent connection."""
    async with connect(gw.ws("/agents/ws")) as ws:
        await send(ws, {"type": "auth", "api_key": api_key})
        reply = await recv(ws)
        assert reply["type"] == "auth_success", reply
        # The agent's inbox and control subjects (one subscription) reach the gateway.
        await until_others_see(gw.nats_url, [gw.subjects.agent_inbox(reply["server_id"])])
        yield ws


async def ping(ws: ClientConnection) -> None:
    """Round trip proving the socket is open and everything sent before was handled."""
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}


@asynccontextmanager
async def stream_reader(js: JetStreamContext, subject: str) -> AsyncIterator[Any]:
    """An ordered consumer on `subject`; yields `next_msg(timeout=...)`."""
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        yield sub
    finally:
        await sub.unsubscribe()


async def eventually(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Poll a condition nothing can be awaited for, with a deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def wait_for_interest(nc: NatsClient, subject: str, timeout_s: float = TIMEOUT_S) -> None:
    """Until a subscription made on another connection (the gateway's) receives from `nc`.

    nats-server can route a message from one connection past a subscription another
    connection made (and flushed) a moment earlier. A request to a subject nobody
    receives fails at once with NoRespondersError, so ask until it does not.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await nc.request(subject, b"", timeout=0.05)
            return
        except NatsTimeoutError:
            return  # someone receives it (and, like the gateway, does not answer)
        except NoRespondersError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.005)
