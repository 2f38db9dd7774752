"""Agent presence end to end: online/offline over REST and NATS, revoked keys and deleted
servers closing the agent's socket, and one live connection per server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from tests.helpers.client import Api, Events, Socket, eventually, metrics_frame
from tests.helpers.stack import Stack

INVALID_KEY = {"type": "error", "code": "invalid_key", "message": "Invalid or inactive API key"}


async def test_online_after_auth_and_offline_after_disconnect(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    assert (await api.get(f"/servers/{server_id}")).json()["status"] == "offline"
    connected = await Events.watch(nc, stack.subjects.agent_connected(server_id))
    disconnected = await Events.watch(nc, stack.subjects.agent_disconnected(server_id))

    agent = await Socket.agent(stack.ws_url, key)
    server = await eventually(lambda: _with_status(api, server_id, "online"), timeout_s=1.0)
    assert server["last_seen"] is not None
    event = await connected.next_data()
    assert event["server_id"] == server_id and event["status"] == "online"

    await agent.close()
    started = time.monotonic()
    await eventually(lambda: _with_status(api, server_id, "offline"), timeout_s=5.0)
    assert time.monotonic() - started < 5.0
    gone = await disconnected.next_data()
    assert gone["status"] == "offline" and gone["connection_id"] == event["connection_id"]
    for events in (connected, disconnected):
        await events.stop()


async def test_a_revoked_key_closes_the_agent_and_cannot_reconnect(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    stranger = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    await eventually(lambda: _with_status(api, server_id, "online"))
    keys = (await api.get("/api-keys", params={"server_id": server_id})).json()
    assert len(keys) == 1 and "key" not in keys[0]
    key_id = keys[0]["id"]

    assert (await stranger.delete(f"/api-keys/{key_id}")).status_code == 404
    await agent.send({"type": "ping"})
    assert (await agent.recv())["type"] == "pong", "a stranger's revoke changed nothing"

    revoked = await api.delete(f"/api-keys/{key_id}")
    assert revoked.status_code == 204, revoked.text
    assert await _closed_within(agent, 2.0) == 1008
    await eventually(lambda: _with_status(api, server_id, "offline"), timeout_s=5.0)

    again = await Socket.open(f"{stack.ws_url}/api/v1/agents/ws")
    await again.send({"type": "auth", "api_key": key})
    assert await again.recv() == INVALID_KEY
    assert await again.closed_with() == 1008
    assert (await api.delete(f"/api-keys/{key_id}")).status_code in (204, 404)

    # The server itself is fine: a new key connects.
    fresh = await api.post("/api-keys", json={"server_id": server_id, "name": "second"})
    assert fresh.status_code == 201, fresh.text
    replacement = await Socket.agent(stack.ws_url, fresh.json()["key"])
    await eventually(lambda: _with_status(api, server_id, "online"))
    await replacement.close()


async def test_deleting_a_server_closes_its_agent(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    await eventually(lambda: _with_status(api, server_id, "online"))

    deleted = await api.delete(f"/servers/{server_id}")
    assert deleted.status_code == 204, deleted.text
    assert await _closed_within(agent, 2.0) == 1008
    assert (await api.get(f"/servers/{server_id}")).status_code == 404
    again = await Socket.open(f"{stack.ws_url}/api/v1/agents/ws")
    await again.send({"type": "auth", "api_key": key})
    assert await again.recv() == INVALID_KEY
    assert await again.closed_with() == 1008


async def test_a_newer_connection_replaces_the_older_one(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    disconnected = await Events.watch(nc, stack.subjects.agent_disconnected(server_id))
    older = await Socket.agent(stack.ws_url, key)
    await eventually(lambda: _with_status(api, server_id, "online"))

    newer = await Socket.agent(stack.ws_url, key)
    assert await older.closed_with(timeout_s=5.0) == 4000
    await newer.send({"type": "ping"})
    assert (await newer.recv())["type"] == "pong"
    # The older connection's offline event must not take the server offline.
    await disconnected.next_data()
    await _stays(lambda: _with_status(api, server_id, "online"), for_s=1.0)
    await newer.send(metrics_frame(cpu_percent=7.0))
    await eventually(lambda: _latest_cpu(api, server_id, 7.0))

    # Two at once: exactly one survives, the other is told 4000.
    await newer.close()
    await eventually(lambda: _with_status(api, server_id, "offline"))
    first, second = await asyncio.gather(Socket.agent(stack.ws_url, key), Socket.agent(stack.ws_url, key))
    closed = await asyncio.wait(
        [asyncio.create_task(s.closed_with(timeout_s=5.0)) for s in (first, second)],
        timeout=5.0,
        return_when=asyncio.FIRST_COMPLETED,
    )
    done, pending = closed
    assert len(done) == 1 and next(iter(done)).result() == 4000
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    survivor = first if second.ws.close_code == 4000 else second
    await survivor.send({"type": "ping"})
    assert (await survivor.recv())["type"] == "pong"
    await eventually(lambda: _with_status(api, server_id, "online"))
    await survivor.close()
    await disconnected.stop()


async def _closed_within(sock: Socket, seconds: float) -> int | None:
    """The close code; fails if the server took longer than `seconds` (error frames may come first)."""
    started = time.monotonic()
    code = await sock.closed_with(timeout_s=seconds + 1.0)
    assert time.monotonic() - started <= seconds, f"closed after {time.monotonic() - started:.2f} s"
    return code


async def _stays(check: Any, for_s: float) -> None:
    """`check` holds on every poll for `for_s` (a state that must not change)."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        assert await check(), "state changed"
        await asyncio.sleep(0.1)


async def _with_status(api: Api, server_id: str, status: str) -> dict[str, Any] | None:
    server: dict[str, Any] = (await api.get(f"/servers/{server_id}")).json()
    return server if server["status"] == status else None


async def _latest_cpu(api: Api, server_id: str, cpu: float) -> bool:
    reply = await api.get(f"/metrics/{server_id}")
    return reply.status_code == 200 and reply.json()["cpu_percent"] == cpu
