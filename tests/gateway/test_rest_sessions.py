"""REST /auth/logout, /logout-all, /password and the 429/403/409 answers of issue 8, against a
real gateway and stubbed services."""

from __future__ import annotations

import uuid

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcError
from tests.gateway.stubs import Api


def bearer(api: Api, session_id: uuid.UUID | None) -> dict[str, str]:
    token = api.gateway.tokens.issue_pair(api.user_id, session_id).access_token
    return {"Authorization": f"Bearer {token}"}


async def test_a_throttled_login_is_429_with_retry_after(api: Api) -> None:
    message = "Too many failed logins; try again later"

    def throttled(_request: object) -> None:
        raise RpcError("rate_limited", message, retry_after_s=42)

    await api.stubs.answer(calls.AUTH_LOGIN, throttled)
    response = await api.client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x"})
    assert (response.status_code, response.json()) == (429, {"detail": message})
    assert response.headers["Retry-After"] == "42"


async def test_closed_registration_is_403_with_the_services_detail(api: Api) -> None:
    detail = "Registration is closed; ask an administrator for an account"
    await api.stubs.error(calls.AUTH_REGISTER, "forbidden", detail)
    response = await api.client.post(
        "/api/v1/auth/register", json={"email": "a@example.com", "password": "long enough"}
    )
    assert (response.status_code, response.json()) == (403, {"detail": detail})


async def test_logout_ends_the_tokens_session_and_is_audited(api: Api) -> None:
    session_id = uuid.uuid4()
    await api.stubs.ok(calls.AUTH_LOGOUT, {"ok": True})
    async with api.audit_events() as next_event:
        response = await api.client.post("/api/v1/auth/logout", headers=bearer(api, session_id))
        event = await next_event()
    assert response.status_code == 204 and response.content == b""
    assert api.stubs.calls(calls.AUTH_LOGOUT) == [
        {"user_id": str(api.user_id), "session_id": str(session_id)}
    ]
    assert (event.user_id, event.action) == (api.user_id, "user.logout")


async def test_logout_all_and_password_change(api: Api) -> None:
    session_id = uuid.uuid4()
    await api.stubs.ok(calls.AUTH_LOGOUT_ALL, {"ok": True})
    await api.stubs.ok(calls.AUTH_PASSWORD, {"ok": True})
    everywhere = await api.client.post("/api/v1/auth/logout-all", headers=bearer(api, session_id))
    assert everywhere.status_code == 204
    assert api.stubs.calls(calls.AUTH_LOGOUT_ALL) == [{"user_id": str(api.user_id)}]

    body = {"current_password": "old secret 1", "new_password": "new secret 12"}
    changed = await api.client.post("/api/v1/auth/password", json=body, headers=bearer(api, session_id))
    assert changed.status_code == 204
    assert api.stubs.calls(calls.AUTH_PASSWORD) == [
        {**body, "user_id": str(api.user_id), "session_id": str(session_id)}
    ]


async def test_password_change_refuses_bad_input_and_missing_tokens_without_calling_auth(api: Api) -> None:
    await api.stubs.ok(calls.AUTH_PASSWORD, {"ok": True})
    weak = await api.client.post(
        "/api/v1/auth/password",
        json={"current_password": "old secret 1", "new_password": "short"},
        headers=bearer(api, uuid.uuid4()),
    )
    assert weak.status_code == 422
    anonymous = await api.client.post(
        "/api/v1/auth/password", json={"current_password": "old secret 1", "new_password": "long enough"}
    )
    assert anonymous.status_code == 401
    assert (await api.client.post("/api/v1/auth/logout")).status_code == 401
    assert api.stubs.calls(calls.AUTH_PASSWORD) == []


async def test_a_ceiling_is_409_with_its_detail(api: Api) -> None:
    await api.stubs.error(calls.SERVERS_CREATE, "conflict", "Server limit reached (100 per user)")
    response = await api.client.post("/api/v1/servers", json={"name": "web"}, headers=api.headers)
    assert (response.status_code, response.json()) == (409, {"detail": "Server limit reached (100 per user)"})
