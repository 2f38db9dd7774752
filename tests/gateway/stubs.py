"""Stand-in services for the gateway's REST tests, plus the gateway/client harness.

Each stub is a plain nats-py responder on the method's real RPC subject, so the
gateway under test goes through real NATS request/reply. Stubs record every
request (parsed JSON) before answering, so a test can assert on it as soon as
the HTTP response is back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.runtime.rpc import ErrorCode, RpcError, error_reply, ok_reply, rpc_subject
from opswire.runtime.tokens import TokenService
from tests.helpers.backends import Namespace
from tests.helpers.gateway import gateway_settings, running_gateway

Handler = Callable[[dict[str, Any]], Awaitable[Any] | Any]


def method_key(method: RpcMethod[Any]) -> str:
    return f"{method.service}.{method.method}"


class ServiceStubs:
    """RPC responders standing in for auth, ingest and commands."""

    def __init__(self, nc: NatsClient, subjects: Subjects) -> None:
        self._nc = nc
        self._subjects = subjects
        self._subs: list[Subscription] = []
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def calls(self, method: RpcMethod[Any]) -> list[dict[str, Any]]:
        return self.requests[method_key(method)]

    async def answer(self, method: RpcMethod[Any], handler: Handler) -> None:
        """Reply with `handler(request)` as data; an RpcError it raises becomes an error reply."""

        async def respond(msg: Msg) -> None:
            request = orjson.loads(msg.data)
            self.requests[method_key(method)].append(request)
            try:
                result = handler(request)
                if asyncio.iscoroutine(result):
                    result = await result
            except RpcError as exc:
                await msg.respond(error_reply(exc.code, exc.detail, exc.retry_after_s))
                return
            await msg.respond(ok_reply(result))

        self._subs.append(await self._nc.subscribe(rpc_subject(self._subjects, method), cb=respond))
        await self._nc.flush()  # the server knows the responder before the gateway asks

    async def ok(self, method: RpcMethod[Any], data: Any) -> None:
        await self.answer(method, lambda _request: data)

    async def error(self, method: RpcMethod[Any], code: ErrorCode, detail: Any) -> None:
        def fail(_request: dict[str, Any]) -> Any:
            raise RpcError(code, detail)

        await self.answer(method, fail)

    async def silent(self, method: RpcMethod[Any]) -> None:
        """A responder that records the request and never answers (a hung service)."""

        async def swallow(msg: Msg) -> None:
            self.requests[method_key(method)].append(orjson.loads(msg.data))

        self._subs.append(await self._nc.subscribe(rpc_subject(self._subjects, method), cb=swallow))
        await self._nc.flush()

    async def owner(self, user_id: uuid.UUID, server_ids: set[uuid.UUID]) -> None:
        """auth.authorize: ok for the user's servers, not_found for anything else."""

        def authorize(request: dict[str, Any]) -> Any:
            if request["user_id"] == str(user_id) and uuid.UUID(request["server_id"]) in server_ids:
                return {"ok": True}
            raise RpcError("not_found", "Server not found")

        await self.answer(calls.AUTH_AUTHORIZE, authorize)

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()


# --- harness -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    base_url: str
    subjects: Subjects
    tokens: TokenService


# Shorter than the default, so a hung service turns into 503 quickly in tests.
TEST_RPC_TIMEOUT_S = 0.5


@asynccontextmanager
async def started_gateway(nats_url: str, jwt_secret: str) -> AsyncIterator[Gateway]:
    namespace = Namespace.new()
    settings = gateway_settings(nats_url, namespace, jwt_secret, rpc_timeout_s=TEST_RPC_TIMEOUT_S)
    async with running_gateway(settings) as base_url:
        yield Gateway(base_url, namespace.subjects, TokenService(jwt_secret))


@dataclass
class Api:
    """One test's view: an HTTP client, the stubs, and a logged-in user owning one server."""

    client: httpx.AsyncClient
    stubs: ServiceStubs
    gateway: Gateway
    nc: NatsClient
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    server_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def headers(self) -> dict[str, str]:
        token = self.gateway.tokens.issue_pair(self.user_id).access_token
        return {"Authorization": f"Bearer {token}"}

    @asynccontextmanager
    async def audit_events(self) -> AsyncIterator[Callable[[], Awaitable[AuditEvent]]]:
        """Subscribe to every audit subject; yields `next_event()` (waits up to 5 s)."""
        sub = await self.nc.subscribe(self.gateway.subjects.all_audit)
        await self.nc.flush()

        async def next_event() -> AuditEvent:
            msg = await sub.next_msg(timeout=5)
            return AuditEvent.model_validate_json(msg.data)

        try:
            yield next_event
        finally:
            await sub.unsubscribe()


@asynccontextmanager
async def api_session(gateway: Gateway, nc: NatsClient) -> AsyncIterator[Api]:
    stubs = ServiceStubs(nc, gateway.subjects)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as client:
        api = Api(client=client, stubs=stubs, gateway=gateway, nc=nc)
        await stubs.owner(api.user_id, {api.server_id})
        try:
            yield api
        finally:
            await stubs.close()


# --- reply builders (contract-shaped, as the services would send them) ----------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")  # as pydantic writes it


def user_public(user_id: uuid.UUID, email: str = "ada@example.com") -> dict[str, Any]:
    return {"id": str(user_id), "email": email, "full_name": "Ada", "created_at": now_iso()}


def server_public(server_id: uuid.UUID, name: str = "web-1") -> dict[str, Any]:
    return {
        "id": str(server_id),
        "name": name,
        "hostname": None,
        "description": None,
        "status": "offline",
        "last_seen": None,
        "created_at": now_iso(),
    }


def command_result(server_id: uuid.UUID, command: str = "uptime", **fields: Any) -> dict[str, Any]:
    return {
        "command_id": uuid.uuid4().hex,
        "server_id": str(server_id),
        "kind": "shell",
        "command": command,
        "status": "succeeded",
        "output": "up 3 days\n",
        "exit_code": 0,
        "duration_ms": 12,
        "created_at": now_iso(),
        "finished_at": now_iso(),
        **fields,
    }


def docker_result(server_id: uuid.UUID, action: str, **fields: Any) -> dict[str, Any]:
    return {
        "command_id": uuid.uuid4().hex,
        "server_id": str(server_id),
        "action": action,
        "container_id": None,
        "success": True,
        "message": "ok",
        "data": None,
        "status": "succeeded",
        "created_at": now_iso(),
        **fields,
    }
