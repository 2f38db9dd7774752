"""OPSWIRE_CORS_ORIGINS: cross-origin REST for the listed origins only, none by default."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from opswire.runtime.settings import load_settings

ALLOWED = "https://dash.example.com"


@asynccontextmanager
async def _client(monkeypatch: pytest.MonkeyPatch, origins: str | None) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("OPSWIRE_CORS_ORIGINS", raising=False)
    if origins is not None:
        monkeypatch.setenv("OPSWIRE_CORS_ORIGINS", origins)
    settings = load_settings(GatewaySettings, jwt_secret=secrets.token_urlsafe(48))
    # No lifespan: preflights are answered by the middleware, before any service is asked.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


def _preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_from_an_allowed_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, f"{ALLOWED}, http://localhost:5173") as http:
        response = await http.options(
            "/api/v1/commands/1", headers=_preflight(ALLOWED, "authorization, content-type, idempotency-key")
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods >= {"GET", "POST", "PUT", "DELETE"}
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert allowed >= {"authorization", "content-type", "idempotency-key", "x-api-key"}
        assert "access-control-allow-credentials" not in response.headers
        # A simple request from the origin is answered with its CORS header too.
        health = await http.get("/health", headers={"Origin": ALLOWED})
        assert health.headers["access-control-allow-origin"] == ALLOWED


async def test_preflight_from_another_origin_is_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, ALLOWED) as http:
        response = await http.options("/api/v1/servers", headers=_preflight("https://evil.example.net"))
        assert "access-control-allow-origin" not in response.headers
        simple = await http.get("/openapi.json", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in simple.headers


async def test_no_cross_origin_access_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, None) as http:
        response = await http.options("/api/v1/servers", headers=_preflight(ALLOWED))
        assert "access-control-allow-origin" not in response.headers
        simple = await http.get("/openapi.json", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in simple.headers


async def test_wildcard(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(monkeypatch, "*") as http:
        response = await http.options("/api/v1/servers", headers=_preflight("https://any.example.org"))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "value",
    [
        "dash.example.com",
        "https://dash.example.com/",
        "https://dash.example.com/app",
        "ftp://dash.example.com",
        "https://dash.example.com:70000",
        f"{ALLOWED},not an origin",
    ],
)
def test_invalid_origins_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("OPSWIRE_CORS_ORIGINS", value)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(GatewaySettings, program="opswire gateway", jwt_secret=secrets.token_urlsafe(48))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "OPSWIRE_CORS_ORIGINS" in err
    assert "is not an origin" in err


def test_origins_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OPSWIRE_CORS_ORIGINS", " https://Dash.Example.com ,http://[::1]:8080,, https://dash.example.com"
    )
    settings = load_settings(GatewaySettings, jwt_secret=secrets.token_urlsafe(48))
    assert settings.cors_origins == ["https://dash.example.com", "http://[::1]:8080"]
