"""Dashboard sockets end to end when the dashboard gets things wrong: every bad frame is
answered with an error and the socket keeps streaming; a bad or missing handshake is 1008."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.helpers.client import Api, Socket, log_frame, metrics_frame
from tests.helpers.stack import Stack

# A short handshake window keeps the "never authenticates" cases fast.
AUTH_TIMEOUT_S = 1.0
STACK_ENV = {"OPSWIRE_AUTH_TIMEOUT_S": str(AUTH_TIMEOUT_S)}

BAD_FRAMES: list[str | bytes] = [
    "this is not json",
    "[1, 2]",
    '{"no": "type"}',
    '{"type": "subscribe", "server_id": "x"}',
    '{"type": "metrics", "cpu_percent": 1}',
    b'{"type": "ping"}\xff',
]


@pytest.mark.parametrize("kind", ["metrics", "logs"])
async def test_bad_frames_get_errors_and_the_socket_keeps_working(
    stack: Stack, http: httpx.AsyncClient, kind: str
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    dashboard = await Socket.dashboard(stack.ws_url, kind, server_id, api.token or "")

    for bad in BAD_FRAMES:
        await dashboard.send(bad)
        error = await dashboard.recv()
        assert error["type"] == "error" and error["message"], (bad, error)
        assert error["code"] == "invalid_format", (bad, error)
    # A later auth frame is a renewal (DESIGN §3): a bad token is an error that changes nothing,
    # a good one is answered like the handshake.
    await dashboard.send({"type": "auth", "token": "again"})
    assert (await dashboard.recv())["code"] == "invalid_token"
    await dashboard.send({"type": "auth", "token": api.token or ""})
    assert await dashboard.recv() == {"type": "auth_success", "server_id": server_id}
    await dashboard.send({"type": "ping"})
    assert await dashboard.recv() == {"type": "pong"}

    # Still streaming.
    if kind == "metrics":
        await agent.send(metrics_frame(cpu_percent=33.0))
        assert (await dashboard.recv_type("metrics"))["data"]["cpu_percent"] == 33.0
    else:
        await agent.send(log_frame("still here"))
        assert (await dashboard.recv_type("log"))["data"]["message"] == "still here"
    for sock in (agent, dashboard):
        await sock.close()


async def test_no_auth_in_time_is_closed_1008(stack: Stack) -> None:
    async def silent(path: str) -> None:
        sock = await Socket.open(f"{stack.ws_url}{path}")
        started = time.monotonic()
        error = await sock.recv(timeout_s=AUTH_TIMEOUT_S + 3)
        assert (error["type"], error["code"]) == ("error", "auth_timeout"), (path, error)
        assert await sock.closed_with(timeout_s=3) == 1008, path
        assert AUTH_TIMEOUT_S * 0.8 <= time.monotonic() - started < AUTH_TIMEOUT_S + 3, path

    await asyncio.gather(
        *(
            silent(path)
            for path in (
                f"/api/v1/ws/metrics/{uuid.uuid4()}",
                f"/api/v1/ws/logs/{uuid.uuid4()}",
                "/api/v1/agents/ws",
            )
        )
    )


async def test_bad_handshakes_are_closed_1008(stack: Stack, http: httpx.AsyncClient, jwt_secret: str) -> None:
    api = await Api.new_user(http)
    me = (await api.get("/auth/me")).json()
    server_id, _ = await api.new_server_with_key()
    email = f"pair-{uuid.uuid4().hex[:8]}@example.com"
    await http.post("/api/v1/auth/register", json={"email": email, "password": "correct horse battery"})
    pair = (
        await http.post("/api/v1/auth/login", json={"email": email, "password": "correct horse battery"})
    ).json()
    past = datetime.now(UTC) - timedelta(minutes=5)
    expired = jwt.encode(
        {"sub": me["id"], "type": "access", "iat": past - timedelta(minutes=15), "exp": past},
        jwt_secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": me["id"], "type": "access", "exp": datetime.now(UTC) + timedelta(hours=1)},
        "not-the-secret-" * 4,
        algorithm="HS256",
    )

    cases: list[tuple[str, str | dict[str, object], str]] = [
        (server_id, {"type": "auth", "token": expired}, "invalid_token"),
        (server_id, {"type": "auth", "token": forged}, "invalid_token"),
        (server_id, {"type": "auth", "token": pair["refresh_token"]}, "invalid_token"),  # never access
        (server_id, {"type": "auth"}, "invalid_token"),
        (server_id, {"type": "ping"}, "unauthenticated"),  # anything before auth
        (server_id, "not json", "invalid_format"),
        (str(uuid.uuid4()), {"type": "auth", "token": api.token or ""}, "not_found"),  # no such server
        ("not-a-uuid", {"type": "auth", "token": api.token or ""}, "not_found"),
    ]
    for kind in ("metrics", "logs"):
        for target, first, code in cases:
            sock = await Socket.open(f"{stack.ws_url}/api/v1/ws/{kind}/{target}")
            await sock.send(first)
            error = await sock.recv()
            assert error["type"] == "error" and error["message"], (kind, first, error)
            assert error["code"] == code, (kind, first, error)
            assert await sock.closed_with() == 1008, (kind, first)

    # And the right token still works.
    ok = await Socket.dashboard(stack.ws_url, "logs", server_id, api.token or "")
    await ok.send({"type": "ping"})
    assert await ok.recv() == {"type": "pong"}
    await ok.close()
