"""Sessions in the auth service: refresh rotation, reuse ends the session, logout,
logout-all, password change, and the revocation notices gateways depend on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from opswire.contract.events import SessionsRevoked
from opswire.runtime.rpc import RpcClient, RpcError
from opswire.runtime.tokens import TokenService
from tests.auth.helpers import PASSWORD, new_user
from tests.helpers.backends import Namespace


async def login(rpc: RpcClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    pair: dict[str, Any] = await rpc.call(calls.AUTH_LOGIN, {"email": email, "password": password})
    return pair


async def refresh(rpc: RpcClient, pair: dict[str, Any]) -> dict[str, Any]:
    renewed: dict[str, Any] = await rpc.call(calls.AUTH_REFRESH, {"refresh_token": pair["refresh_token"]})
    return renewed


async def refused(call: Any) -> RpcError:
    with pytest.raises(RpcError) as exc:
        await call
    return exc.value


@asynccontextmanager
async def revocations(nc: NatsClient, namespace: Namespace) -> AsyncIterator[asyncio.Queue[SessionsRevoked]]:
    """Every `sessions.revoked` notice auth publishes while inside."""
    queue: asyncio.Queue[SessionsRevoked] = asyncio.Queue()

    async def on_notice(msg: Any) -> None:
        queue.put_nowait(SessionsRevoked.model_validate_json(msg.data))

    sub = await nc.subscribe(namespace.subjects.sessions_revoked(), cb=on_notice)
    await nc.flush()
    try:
        yield queue
    finally:
        await sub.unsubscribe()


def session_of(tokens: TokenService, pair: dict[str, Any]) -> uuid.UUID:
    sid = tokens.claims(pair["access_token"]).session_id
    assert sid is not None
    return sid


async def test_refresh_rotates_and_reusing_a_spent_token_ends_the_session(
    rpc: RpcClient, jwt_secret: str, nc: NatsClient, namespace: Namespace
) -> None:
    tokens = TokenService(jwt_secret)
    email = f"rot{uuid.uuid4().hex[:6]}@example.com"
    await new_user(rpc, email)
    first = await login(rpc, email)
    second = await refresh(rpc, first)
    assert second["refresh_token"] != first["refresh_token"]
    assert session_of(tokens, second) == session_of(tokens, first)  # same session, next generation
    third = await refresh(rpc, second)

    async with revocations(nc, namespace) as notices:
        reuse = await refused(refresh(rpc, first))  # a copied, spent token comes back
        notice = await asyncio.wait_for(notices.get(), 5)
    assert (reuse.code, reuse.detail) == ("unauthorized", "Session ended; log in again")
    assert notice.session_ids == [session_of(tokens, first)]
    # The whole family is gone, the newest token included.
    assert (await refused(refresh(rpc, third))).code == "unauthorized"
    # Another login is a new session and works.
    assert await refresh(rpc, await login(rpc, email))


async def test_refresh_tokens_without_a_session_are_refused(rpc: RpcClient, jwt_secret: str) -> None:
    user_id = await new_user(rpc)
    legacy = TokenService(jwt_secret).issue_pair(user_id).model_dump()  # no session id
    assert (await refused(refresh(rpc, legacy))).code == "unauthorized"


async def test_logout_ends_only_that_session(
    rpc: RpcClient, jwt_secret: str, nc: NatsClient, namespace: Namespace
) -> None:
    tokens = TokenService(jwt_secret)
    email = f"out{uuid.uuid4().hex[:6]}@example.com"
    user_id = await new_user(rpc, email)
    laptop, phone = await login(rpc, email), await login(rpc, email)
    async with revocations(nc, namespace) as notices:
        await rpc.call(
            calls.AUTH_LOGOUT, {"user_id": str(user_id), "session_id": str(session_of(tokens, laptop))}
        )
        notice = await asyncio.wait_for(notices.get(), 5)
    assert notice.session_ids == [session_of(tokens, laptop)]
    assert (await refused(refresh(rpc, laptop))).code == "unauthorized"
    assert await refresh(rpc, phone)
    # Someone else's session id ends nothing.
    other = await new_user(rpc)
    await rpc.call(calls.AUTH_LOGOUT, {"user_id": str(other), "session_id": str(session_of(tokens, phone))})
    assert str(session_of(tokens, phone)) not in await rpc.call(calls.AUTH_REVOKED_SESSIONS, {})


async def test_logout_all_ends_every_session_and_gateways_can_ask_for_them(
    rpc: RpcClient, jwt_secret: str, nc: NatsClient, namespace: Namespace
) -> None:
    tokens = TokenService(jwt_secret)
    email = f"all{uuid.uuid4().hex[:6]}@example.com"
    user_id = await new_user(rpc, email)
    pairs = [await login(rpc, email) for _ in range(3)]
    async with revocations(nc, namespace) as notices:
        await rpc.call(calls.AUTH_LOGOUT_ALL, {"user_id": str(user_id)})
        notice = await asyncio.wait_for(notices.get(), 5)
    ended = {session_of(tokens, p) for p in pairs}
    assert set(notice.session_ids) == ended
    for pair in pairs:
        assert (await refused(refresh(rpc, pair))).code == "unauthorized"
    recent = set(await rpc.call(calls.AUTH_REVOKED_SESSIONS, {}))
    assert {str(sid) for sid in ended} <= recent


async def test_password_change_needs_the_current_one_and_ends_the_other_sessions(
    rpc: RpcClient, jwt_secret: str, nc: NatsClient, namespace: Namespace
) -> None:
    tokens = TokenService(jwt_secret)
    email = f"pw{uuid.uuid4().hex[:6]}@example.com"
    user_id = await new_user(rpc, email)
    here, elsewhere = await login(rpc, email), await login(rpc, email)
    change = {
        "user_id": str(user_id),
        "session_id": str(session_of(tokens, here)),
        "new_password": "a brand new secret",
    }
    wrong = await refused(rpc.call(calls.AUTH_PASSWORD, {**change, "current_password": "nope nope"}))
    assert (wrong.code, wrong.detail) == ("forbidden", "Current password is incorrect")
    assert await refresh(rpc, elsewhere) is not None  # nothing changed
    elsewhere = await login(rpc, email)

    async with revocations(nc, namespace) as notices:
        await rpc.call(calls.AUTH_PASSWORD, {**change, "current_password": PASSWORD})
        notice = await asyncio.wait_for(notices.get(), 5)
    assert session_of(tokens, here) not in notice.session_ids
    assert session_of(tokens, elsewhere) in notice.session_ids
    assert (await refused(refresh(rpc, elsewhere))).code == "unauthorized"
    assert await refresh(rpc, here)  # this session stays
    assert (await refused(login(rpc, email))).code == "unauthorized"
    assert await login(rpc, email, "a brand new secret")
