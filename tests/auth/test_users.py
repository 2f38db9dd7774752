from __future__ import annotations

import uuid

import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError
from opswire.runtime.tokens import InvalidToken, TokenService
from tests.auth.helpers import PASSWORD, new_user


async def test_register_login_refresh_me(rpc: RpcClient, jwt_secret: str) -> None:
    user = await rpc.call(
        calls.AUTH_REGISTER,
        {"email": "Alice@Example.com", "password": PASSWORD, "full_name": "Alice"},
    )
    assert user["email"] == "alice@example.com"
    assert user["full_name"] == "Alice"
    assert set(user) == {"id", "email", "full_name", "created_at"}  # never the hash

    pair = await rpc.call(calls.AUTH_LOGIN, {"email": "ALICE@example.com", "password": PASSWORD})
    assert pair["token_type"] == "bearer"
    tokens = TokenService(jwt_secret)
    assert str(tokens.verify(pair["access_token"])) == user["id"]
    with pytest.raises(InvalidToken):
        tokens.verify(pair["refresh_token"])  # a refresh token is not an access token

    renewed = await rpc.call(calls.AUTH_REFRESH, {"refresh_token": pair["refresh_token"]})
    assert str(tokens.verify(renewed["access_token"])) == user["id"]
    with pytest.raises(RpcError) as refused:
        await rpc.call(calls.AUTH_REFRESH, {"refresh_token": pair["access_token"]})
    assert refused.value.code == "unauthorized"

    me = await rpc.call(calls.AUTH_ME, {"user_id": user["id"]})
    assert me == user


async def test_wrong_password_and_unknown_email_look_the_same(rpc: RpcClient) -> None:
    await new_user(rpc, "bob@example.com")
    details = []
    for email, password in (
        ("bob@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
    ):
        with pytest.raises(RpcError) as exc:
            await rpc.call(calls.AUTH_LOGIN, {"email": email, "password": password})
        assert exc.value.code == "unauthorized"
        details.append(exc.value.detail)
    assert details == ["Incorrect email or password"] * 2


async def test_duplicate_email_in_other_case_conflicts(rpc: RpcClient) -> None:
    await new_user(rpc, "carol@example.com")
    with pytest.raises(RpcError) as exc:
        await rpc.call(calls.AUTH_REGISTER, {"email": "CAROL@Example.COM", "password": PASSWORD})
    assert (exc.value.code, exc.value.detail) == ("conflict", "Email already registered")


async def test_bad_registration_is_invalid_and_stores_nothing(rpc: RpcClient) -> None:
    for body in (
        {"email": "dave@example.com", "password": "short"},
        {"email": "not-an-email", "password": PASSWORD},
        {"password": PASSWORD},
        {"email": "dave@example.com", "password": 12345678},
        {"email": "dave@example.com", "password": PASSWORD, "full_name": "x" * 256},
        {"email": "dave@example.com", "password": PASSWORD, "is_admin": True},
    ):
        with pytest.raises(RpcError) as exc:
            await rpc.call(calls.AUTH_REGISTER, body)
        assert exc.value.code == "invalid", body
    with pytest.raises(RpcError) as login:
        await rpc.call(calls.AUTH_LOGIN, {"email": "dave@example.com", "password": PASSWORD})
    assert login.value.code == "unauthorized"


async def test_refresh_for_a_user_that_does_not_exist_is_refused(rpc: RpcClient, jwt_secret: str) -> None:
    stray = TokenService(jwt_secret).issue_pair(uuid.uuid4())
    with pytest.raises(RpcError) as exc:
        await rpc.call(calls.AUTH_REFRESH, {"refresh_token": stray.refresh_token})
    assert exc.value.code == "unauthorized"
    with pytest.raises(RpcError) as forged:
        await rpc.call(calls.AUTH_REFRESH, {"refresh_token": "not.a.jwt"})
    assert forged.value.code == "unauthorized"


async def test_ping_and_malformed_requests(rpc: RpcClient) -> None:
    assert await rpc.call(calls.AUTH_PING, {}) == {"status": "ok"}
    for method, body in (
        (calls.AUTH_ME, {}),
        (calls.AUTH_ME, {"user_id": "not-a-uuid"}),
        (calls.SERVERS_CREATE, {"user_id": str(uuid.uuid4()), "name": 42}),
        (calls.KEYS_LIST, {"user_id": str(uuid.uuid4()), "server_id": []}),
        (calls.AUDIT_LIST, {"user_id": str(uuid.uuid4()), "limit": 0}),
    ):
        with pytest.raises(RpcError) as exc:
            await rpc.call(method, body, timeout_s=2)
        assert exc.value.code == "invalid", (method.method, body)
