"""The whole system the way a user drives it: real processes, sockets and REST.

register -> login -> server -> key -> agent socket -> metrics -> dashboard and
REST history -> a command round trip; then every door's bad input, each
answered as DESIGN says with the system still working afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import httpx
from websockets.exceptions import ConnectionClosed

from tests.helpers.client import Api, Socket, eventually, metrics_frame
from tests.helpers.stack import Stack


async def answer_commands(agent: Socket, output: str = "hello\n") -> None:
    """Act as the agent's command runner: answer each command frame."""
    with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
        while True:
            frame = await agent.recv(timeout_s=60)
            if frame["type"] == "command":
                await agent.send(
                    {
                        "type": "command_response",
                        "command_id": frame["command_id"],
                        "output": output,
                        "exit_code": 0,
                        "duration_ms": 7,
                    }
                )


async def test_metrics_and_commands_travel_the_whole_way(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    me = await api.get("/auth/me")
    assert me.status_code == 200 and "password" not in me.text and "hash" not in me.text
    server_id, key = await api.new_server_with_key()

    agent = await Socket.agent(stack.ws_url, key)
    server = await eventually(lambda: _online(api, server_id))
    assert server["last_seen"] is not None

    dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, api.token or "")
    sent = metrics_frame(cpu_percent=55.5, load_average=[0.1, 0.2, 0.3], custom_field={"kept": True})
    await agent.send(sent)
    live = await dashboard.recv_type("metrics")
    assert live["data"]["cpu_percent"] == 55.5
    assert live["data"]["server_id"] == server_id
    assert live["data"]["custom_field"] == {"kept": True}
    assert "received_at" in live["data"]

    history = await eventually(lambda: _history(api, server_id))
    assert [s["cpu_percent"] for s in history] == [55.5]
    latest = await api.get(f"/metrics/{server_id}")
    assert latest.status_code == 200 and latest.json()["cpu_percent"] == 55.5

    # A new dashboard gets the latest sample at once.
    late = await Socket.dashboard(stack.ws_url, "metrics", server_id, api.token or "")
    assert (await late.recv_type("metrics"))["data"]["cpu_percent"] == 55.5

    responder = asyncio.create_task(answer_commands(agent))
    reply = await api.post(f"/commands/{server_id}", json={"command": "echo hello", "timeout_s": 10})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["status"] == "succeeded" and result["output"] == "hello\n"
    assert result["exit_code"] == 0 and result["duration_ms"] == 7 and result["command"] == "echo hello"
    past = (await api.get(f"/commands/{server_id}/history")).json()
    assert past[0]["command_id"] == result["command_id"] and past[0]["status"] == "succeeded"

    responder.cancel()
    await agent.close()
    await eventually(lambda: _offline(api, server_id), timeout_s=10)
    # No agent -> 409 at once.
    assert (await api.post(f"/commands/{server_id}", json={"command": "true"})).status_code == 409
    for sock in (dashboard, late):
        await sock.close()


async def test_every_bad_agent_frame_is_answered_and_the_socket_keeps_working(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    other_id, _ = await api.new_server_with_key("other")
    agent = await Socket.agent(stack.ws_url, key)
    dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, api.token or "")

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bad_frames: list[dict[str, object] | str] = [
        "this is not json",
        "[1, 2, 3]",
        {"type": "no_such_type"},
        {"no": "type"},
        metrics_frame(cpu_percent="high"),
        metrics_frame(cpu_percent=150),
        metrics_frame(memory_percent=-1),
        metrics_frame(disk_usage="full"),
        metrics_frame(timestamp="yesterday"),
        metrics_frame(timestamp=future),
        metrics_frame(server_id=other_id),
        {"type": "log", "level": "loud", "message": "x", "timestamp": datetime.now(UTC).isoformat()},
    ]
    for bad in bad_frames:
        await agent.send(bad)
        error = await agent.recv()
        assert (error["type"], error["code"], error["message"]) == (
            "error",
            "invalid_format",
            "Invalid message format",
        ), (bad, error)

    await agent.send({"type": "ping"})
    assert (await agent.recv())["type"] == "pong"
    await agent.send(metrics_frame(cpu_percent=1.5))
    assert (await dashboard.recv_type("metrics"))["data"]["cpu_percent"] == 1.5
    stored = await eventually(lambda: _history(api, server_id))
    assert [s["cpu_percent"] for s in stored] == [1.5], "nothing from the bad frames was stored"

    # Oversized: refused without parsing, close 1009.
    await agent.send("x" * (1024 * 1024 + 1))
    assert await agent.closed_with() == 1009
    await dashboard.close()


async def test_bad_credentials_at_each_door(stack: Stack, http: httpx.AsyncClient) -> None:
    owner = await Api.new_user(http)
    stranger = await Api.new_user(http)
    server_id, key = await owner.new_server_with_key()

    wrong_key = await Socket.open(f"{stack.ws_url}/api/v1/agents/ws")
    await wrong_key.send({"type": "auth", "api_key": "ow_not-a-real-key"})
    assert await wrong_key.recv() == {
        "type": "error",
        "code": "invalid_key",
        "message": "Invalid or inactive API key",
    }
    assert await wrong_key.closed_with() == 1008

    not_auth_first = await Socket.open(f"{stack.ws_url}/api/v1/agents/ws")
    await not_auth_first.send(metrics_frame())
    assert (await not_auth_first.recv())["code"] == "unauthenticated"
    assert await not_auth_first.closed_with() == 1008

    # Another user's server: 404 over REST, error + 1008 over the dashboard socket.
    for path in (
        f"/servers/{server_id}",
        f"/metrics/{server_id}",
        f"/metrics/{server_id}/history",
        f"/commands/{server_id}/history",
    ):
        assert (await stranger.get(path)).status_code == 404, path
    assert (await stranger.post(f"/commands/{server_id}", json={"command": "id"})).status_code == 404
    peek = await Socket.open(f"{stack.ws_url}/api/v1/ws/metrics/{server_id}")
    await peek.send({"type": "auth", "token": stranger.token or ""})
    assert (await peek.recv())["code"] == "not_found"
    assert await peek.closed_with() == 1008

    forged = await Socket.open(f"{stack.ws_url}/api/v1/ws/metrics/{server_id}")
    await forged.send({"type": "auth", "token": "e30.e30.forged"})
    assert (await forged.recv())["code"] == "invalid_token"
    assert await forged.closed_with() == 1008

    # The system still works for the owner after all of that.
    agent = await Socket.agent(stack.ws_url, key)
    await agent.send(metrics_frame(cpu_percent=3.0))
    assert [s["cpu_percent"] for s in await eventually(lambda: _history(owner, server_id))] == [3.0]
    assert (await http.get("/api/v1/servers")).status_code == 401
    await agent.close()


async def _online(api: Api, server_id: str) -> dict[str, object] | None:
    server = (await api.get(f"/servers/{server_id}")).json()
    return server if server["status"] == "online" else None


async def _offline(api: Api, server_id: str) -> bool:
    return bool((await api.get(f"/servers/{server_id}")).json()["status"] == "offline")


async def _history(api: Api, server_id: str) -> list[dict[str, object]] | None:
    reply = await api.get(f"/metrics/{server_id}/history")
    assert reply.status_code == 200, reply.text
    samples: list[dict[str, object]] = reply.json()
    return samples or None
