"""Hostile REST input: never a 500, never an echo of what was refused, never a service call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from opswire.contract import rpc as calls
from tests.gateway.stubs import Api, server_public


async def test_a_refused_register_never_echoes_the_password(api: Api) -> None:
    body = {"email": "ada@example.com", "password": "s3cr3t!"}
    response = await api.client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert "s3cr3t!" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
    assert api.stubs.calls(calls.AUTH_REGISTER) == []


async def test_a_refused_oversized_field_is_not_sent_back(api: Api) -> None:
    response = await api.client.post("/api/v1/servers", json={"name": "x" * 100_000}, headers=api.headers)
    assert response.status_code == 422
    assert len(response.content) < 1_000


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800x"}',  # a lone surrogate: valid JSON, not encodable as UTF-8
        b'{"name": NaN}',
        b'{"name": "ok", "description": Infinity}',
    ],
)
async def test_unencodable_values_are_422_not_500(api: Api, raw: bytes) -> None:
    await api.stubs.ok(calls.SERVERS_CREATE, server_public(api.server_id))
    response = await api.client.post(
        "/api/v1/servers", content=raw, headers={**api.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert api.stubs.calls(calls.SERVERS_CREATE) == []


async def _chunks(raw: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), 64 * 1024):
        yield raw[start : start + 64 * 1024]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/api/v1/servers", "/api/v1/auth/login"])
async def test_a_body_over_the_limit_is_413_json(api: Api, path: str, chunked: bool) -> None:
    await api.stubs.ok(calls.SERVERS_CREATE, server_public(api.server_id))
    raw = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await api.client.post(
        path,
        content=_chunks(raw) if chunked else raw,
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}
    assert api.stubs.calls(calls.SERVERS_CREATE) == []


# PostgreSQL text cannot hold NUL: refused up front rather than a 500 from the service.
@pytest.mark.parametrize(
    ("method", "path", "body", "rpc"),
    [
        (
            "POST",
            "/auth/register",
            {"email": "a@example.com", "password": "longenough", "full_name": "A\x00"},
            calls.AUTH_REGISTER,
        ),
        ("POST", "/auth/login", {"email": "a@example.com\x00", "password": "longenough"}, calls.AUTH_LOGIN),
        ("POST", "/servers", {"name": "web\x00"}, calls.SERVERS_CREATE),
        ("POST", "/servers", {"name": "web", "hostname": "h\x00"}, calls.SERVERS_CREATE),
        ("POST", "/servers", {"name": "web", "description": "\x00"}, calls.SERVERS_CREATE),
        ("PUT", "/servers/{server_id}", {"name": "web\x00"}, calls.SERVERS_UPDATE),
        ("POST", "/api-keys", {"server_id": "{server_id}", "name": "k\x00"}, calls.KEYS_CREATE),
        ("POST", "/commands/{server_id}", {"command": "id\x00"}, calls.COMMANDS_RUN),
    ],
)
async def test_nul_characters_are_422_and_reach_no_service(
    api: Api, method: str, path: str, body: dict[str, Any], rpc: calls.RpcMethod[Any]
) -> None:
    await api.stubs.ok(rpc, {})
    sid = str(api.server_id)
    body = {key: value.replace("{server_id}", sid) for key, value in body.items()}
    response = await api.client.request(
        method, "/api/v1" + path.format(server_id=sid), json=body, headers=api.headers
    )
    assert response.status_code == 422
    assert api.stubs.calls(rpc) == []


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01T00:00:00%2B14:00",  # before year 1 once in UTC
        "end=9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    ],
)
async def test_datetimes_out_of_range_in_utc_are_422(api: Api, query: str) -> None:
    await api.stubs.ok(calls.METRICS_HISTORY, [])
    response = await api.client.get(f"/api/v1/metrics/{api.server_id}/history?{query}", headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.METRICS_HISTORY) == []
