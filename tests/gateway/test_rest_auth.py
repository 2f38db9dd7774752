"""REST /auth and bearer-token handling, against a real gateway and stubbed services."""

from __future__ import annotations

import uuid

import jwt
import pytest

from opswire.contract import rpc as calls
from opswire.runtime.tokens import TokenService
from tests.gateway.stubs import Api, user_public


async def test_register_returns_201_and_the_user_without_secrets(api: Api) -> None:
    new_id = uuid.uuid4()
    # A careless service reply must still not leak a hash through the gateway.
    await api.stubs.ok(calls.AUTH_REGISTER, {**user_public(new_id), "password_hash": "$argon2$x"})
    async with api.audit_events() as next_event:
        body = {"email": "Ada@Example.com", "password": "correct horse", "full_name": "Ada"}
        response = await api.client.post("/api/v1/auth/register", json=body)
        event = await next_event()
    assert response.status_code == 201
    assert set(response.json()) == {"id", "email", "full_name", "created_at"}
    assert api.stubs.calls(calls.AUTH_REGISTER)[0]["email"] == "ada@example.com"
    assert (event.user_id, event.action) == (new_id, "user.register")
    assert "correct horse" not in str(event.detail)


async def test_register_conflict_is_409(api: Api) -> None:
    await api.stubs.error(calls.AUTH_REGISTER, "conflict", "Email already registered")
    response = await api.client.post(
        "/api/v1/auth/register", json={"email": "a@example.com", "password": "long enough"}
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "Email already registered"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "password": "short"},
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@example.com", "password": "long enough", "full_name": "x" * 256},
        {"password": "long enough"},
    ],
)
async def test_register_rejects_bad_input_without_calling_auth(api: Api, body: dict[str, str]) -> None:
    await api.stubs.ok(calls.AUTH_REGISTER, user_public(uuid.uuid4()))
    response = await api.client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert api.stubs.calls(calls.AUTH_REGISTER) == []


async def test_login_json_returns_a_pair_and_audits_the_user(api: Api) -> None:
    pair = api.gateway.tokens.issue_pair(api.user_id).model_dump()
    await api.stubs.ok(calls.AUTH_LOGIN, pair)
    async with api.audit_events() as next_event:
        response = await api.client.post(
            "/api/v1/auth/login", json={"email": "ada@example.com", "password": "pw-123456"}
        )
        event = await next_event()
    assert response.status_code == 200
    assert response.json() == {**pair, "token_type": "bearer"}
    assert (event.user_id, event.action) == (api.user_id, "user.login")
    assert "pw-123456" not in event.model_dump_json()


async def test_login_accepts_the_oauth2_password_form(api: Api) -> None:
    await api.stubs.ok(calls.AUTH_LOGIN, api.gateway.tokens.issue_pair(api.user_id).model_dump())
    response = await api.client.post(
        "/api/v1/auth/login",
        data={"username": "ada@example.com", "password": "pw-123456", "grant_type": "password"},
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    # The client address goes along, for throttling and the failed-login log.
    assert api.stubs.calls(calls.AUTH_LOGIN) == [
        {"email": "ada@example.com", "password": "pw-123456", "client": "127.0.0.1"}
    ]


async def test_login_form_without_username_is_422(api: Api) -> None:
    response = await api.client.post("/api/v1/auth/login", data={"password": "pw-123456"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "username"]


@pytest.mark.parametrize("content", [b"not json", b'{"email": "a@example.com"}', b"[]"])
async def test_login_bad_json_is_422_and_never_echoes_the_body(api: Api, content: bytes) -> None:
    response = await api.client.post(
        "/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "input" not in response.text


@pytest.mark.parametrize("service_detail", ["Incorrect email or password", "No such user"])
async def test_wrong_credentials_get_one_401_detail(api: Api, service_detail: str) -> None:
    await api.stubs.error(calls.AUTH_LOGIN, "unauthorized", service_detail)
    response = await api.client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect email or password"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_refresh_returns_a_new_pair(api: Api) -> None:
    pair = api.gateway.tokens.issue_pair(api.user_id)
    await api.stubs.ok(calls.AUTH_REFRESH, api.gateway.tokens.issue_pair(api.user_id).model_dump())
    response = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert api.stubs.calls(calls.AUTH_REFRESH) == [{"refresh_token": pair.refresh_token}]


async def test_refresh_refused_is_401_with_www_authenticate(api: Api) -> None:
    await api.stubs.error(calls.AUTH_REFRESH, "unauthorized", "Invalid or expired token")
    response = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": "abc"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_returns_the_user_of_the_token(api: Api) -> None:
    await api.stubs.ok(calls.AUTH_ME, user_public(api.user_id))
    response = await api.client.get("/api/v1/auth/me", headers=api.headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(api.user_id)
    assert api.stubs.calls(calls.AUTH_ME) == [{"user_id": str(api.user_id)}]


def _bad_tokens(secret: str, user_id: uuid.UUID) -> dict[str, dict[str, str]]:
    forged = TokenService("f" * 48).issue_pair(user_id).access_token
    expired = TokenService(secret, access_ttl_s=-60).issue_pair(user_id).access_token
    refresh = TokenService(secret).issue_pair(user_id).refresh_token
    no_sub = jwt.encode({"type": "access", "exp": 4102444800}, secret, algorithm="HS256")
    return {
        "missing": {},
        "forged": {"Authorization": f"Bearer {forged}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "refresh-as-access": {"Authorization": f"Bearer {refresh}"},
        "no-subject": {"Authorization": f"Bearer {no_sub}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "forged", "expired", "refresh-as-access", "no-subject", "garbage", "basic-scheme"],
)
async def test_bad_tokens_are_401_with_www_authenticate(api: Api, jwt_secret: str, case: str) -> None:
    await api.stubs.ok(calls.AUTH_ME, user_public(api.user_id))
    headers = _bad_tokens(jwt_secret, api.user_id)[case]
    response = await api.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "detail" in response.json()
    assert api.stubs.calls(calls.AUTH_ME) == []
