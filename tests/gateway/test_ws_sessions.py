"""Sessions at the gateway: a dashboard socket lives no longer than its token unless renewed
on the socket; an ended session is refused on REST and its sockets close (DESIGN §3, §9)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from websockets.asyncio.client import ClientConnection, connect

from opswire.contract.events import SessionsRevoked
from opswire.contract.types import utc_now
from opswire.runtime.rpc import ok_reply
from opswire.runtime.tokens import TokenService
from tests.helpers.backends import Namespace
from tests.helpers.ws import Gateway, Services, gateway, ping, recv, recv_until_closed, send

SHORT_TTL_S = 2


@pytest.fixture
async def services(nc: NatsClient, namespace: Namespace) -> AsyncIterator[Services]:
    stub = Services(nc, namespace.subjects)
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
def tokens(jwt_secret: str) -> TokenService:
    return TokenService(jwt_secret)


def owned_server(services: Services) -> tuple[uuid.UUID, str]:
    """(owner, server id) known to the stubbed auth."""
    _, identity = services.add_agent()
    services.owners.add((identity.user_id, identity.server_id))
    return identity.user_id, str(identity.server_id)


@asynccontextmanager
async def dashboard(gw: Gateway, server_id: str, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(gw.ws(f"/ws/metrics/{server_id}")) as ws:
        await send(ws, {"type": "auth", "token": token})
        assert await recv(ws) == {"type": "auth_success", "server_id": server_id}
        yield ws


async def ended_with(ws: ClientConnection, message: str, timeout_s: float = 10.0) -> None:
    frames = await recv_until_closed(ws, timeout_s)
    assert frames[-1] == {"type": "error", "code": "invalid_token", "message": message}
    assert ws.close_code == 1008


async def revoke(nc: NatsClient, gw: Gateway, *session_ids: uuid.UUID) -> None:
    notice = SessionsRevoked(session_ids=list(session_ids), until=utc_now() + timedelta(minutes=15))
    await nc.publish(gw.subjects.sessions_revoked(), notice.model_dump_json().encode())
    await nc.flush()


async def test_a_socket_ends_at_token_expiry_without_renewal(
    gw: Gateway, services: Services, jwt_secret: str
) -> None:
    user_id, sid = owned_server(services)
    short = TokenService(jwt_secret, access_ttl_s=SHORT_TTL_S).issue_pair(user_id, uuid.uuid4())
    async with dashboard(gw, sid, short.access_token) as ws:
        await ended_with(ws, "Token expired")


async def test_renewal_on_the_socket_keeps_it_past_the_first_expiry(
    gw: Gateway, services: Services, jwt_secret: str, tokens: TokenService
) -> None:
    user_id, sid = owned_server(services)
    session = uuid.uuid4()
    short_tokens = TokenService(jwt_secret, access_ttl_s=SHORT_TTL_S)
    short = short_tokens.issue_pair(user_id, session).access_token
    async with dashboard(gw, sid, short) as ws:
        await send(ws, {"type": "auth", "token": tokens.issue_pair(user_id, session).access_token})
        assert await recv(ws) == {"type": "auth_success", "server_id": sid}
        # Wait out the first token's lifetime (the deadline under test), then the socket still answers.
        left_s = (short_tokens.claims(short).expires_at - utc_now()).total_seconds()
        await asyncio.sleep(max(0.0, left_s) + 1.0)
        await ping(ws)


@pytest.mark.parametrize("whose", ["another user", "garbage"])
async def test_a_refused_renewal_is_an_error_and_the_socket_lives_until_its_token_expires(
    gw: Gateway, services: Services, jwt_secret: str, whose: str
) -> None:
    user_id, sid = owned_server(services)
    tokens = TokenService(jwt_secret, access_ttl_s=SHORT_TTL_S)
    async with dashboard(gw, sid, tokens.issue_pair(user_id, uuid.uuid4()).access_token) as ws:
        fresh = tokens.issue_pair(uuid.uuid4()).access_token if whose == "another user" else "x.y.z"
        await send(ws, {"type": "auth", "token": fresh})
        assert await recv(ws) == {
            "type": "error",
            "code": "invalid_token",
            "message": "Invalid or expired token",
        }
        await ping(ws)
        await ended_with(ws, "Token expired")  # the refused token did not extend anything


@asynccontextmanager
async def answering(nc: NatsClient, subject: str, data: Any) -> AsyncIterator[list[bytes]]:
    """A stand-in service answering `subject` with `data`; yields the requests it got."""
    asked: list[bytes] = []

    async def respond(msg: Msg) -> None:
        asked.append(msg.data)
        await msg.respond(ok_reply(data))

    sub = await nc.subscribe(subject, cb=respond)
    await nc.flush()
    try:
        yield asked
    finally:
        await sub.unsubscribe()


async def test_an_ended_session_closes_its_sockets_and_its_tokens_get_401(
    gw: Gateway, services: Services, tokens: TokenService, nc: NatsClient, namespace: Namespace
) -> None:
    user_id, sid = owned_server(services)
    me = {
        "id": str(user_id),
        "email": "ada@example.com",
        "full_name": None,
        "created_at": utc_now().isoformat(),
    }
    ended, other = uuid.uuid4(), uuid.uuid4()
    ended_token = tokens.issue_pair(user_id, ended).access_token
    other_token = tokens.issue_pair(user_id, other).access_token
    async with dashboard(gw, sid, ended_token) as gone, dashboard(gw, sid, other_token) as stays:
        await revoke(nc, gw, ended)
        await ended_with(gone, "Session ended", timeout_s=2.0)  # DESIGN §3: within 2 s
        await ping(stays)
    async with (
        answering(nc, namespace.subjects.rpc("auth", "me"), me) as asked,
        httpx.AsyncClient(base_url=gw.url + "/api/v1") as http,
    ):
        refused = await http.get("/auth/me", headers={"Authorization": f"Bearer {ended_token}"})
        allowed = await http.get("/auth/me", headers={"Authorization": f"Bearer {other_token}"})
    assert (refused.status_code, refused.json()) == (401, {"detail": "Session ended; log in again"})
    assert (allowed.status_code, allowed.json()["id"]) == (200, str(user_id))
    assert len(asked) == 1  # the refused token never reached auth
    # A new socket with the ended session's token is refused at the handshake.
    async with connect(gw.ws(f"/ws/metrics/{sid}")) as ws:
        await send(ws, {"type": "auth", "token": ended_token})
        await ended_with(ws, "Session ended")


async def test_junk_on_the_revocation_subject_changes_nothing(
    gw: Gateway, services: Services, tokens: TokenService, nc: NatsClient
) -> None:
    user_id, sid = owned_server(services)
    async with dashboard(gw, sid, tokens.issue_pair(user_id, uuid.uuid4()).access_token) as ws:
        for junk in (b"{", b'{"session_ids": []}', b'{"session_ids": ["x"], "until": "now"}'):
            await nc.publish(gw.subjects.sessions_revoked(), junk)
        await nc.flush()
        await ping(ws)
    assert len(gw.app.state.gateway.revoked) == 0


async def test_a_starting_gateway_loads_the_recently_ended_sessions(
    nats_url: str,
    namespace: Namespace,
    jwt_secret: str,
    services: Services,
    nc: NatsClient,
    tokens: TokenService,
) -> None:
    user_id, sid = owned_server(services)
    ended = uuid.uuid4()
    async with (
        answering(nc, namespace.subjects.rpc("auth", "sessions.revoked"), [str(ended)]) as asked,
        gateway(nats_url, namespace, jwt_secret) as gw,
        connect(gw.ws(f"/ws/metrics/{sid}")) as ws,
    ):
        await send(ws, {"type": "auth", "token": tokens.issue_pair(user_id, ended).access_token})
        await ended_with(ws, "Session ended")
    assert len(asked) == 1
