"""Logs socket resume (DESIGN §3 `since`): a reconnecting dashboard gets the stored lines
after its last instant, then live ones — nothing missed, nothing twice, bounded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers.client import Api, Socket, eventually, log_frame
from tests.helpers.stack import Stack

RESUME_LIMIT = 15
STACK_ENV = {"OPSWIRE_LOGS_RESUME_LIMIT": str(RESUME_LIMIT)}


async def _stored(api: Api, server_id: str, expect: int) -> bool:
    reply = await api.get(f"/logs/{server_id}", params={"limit": 1000})
    return reply.status_code == 200 and len(reply.json()) >= expect


async def _resume(stack: Stack, server_id: str, token: str, since: datetime) -> Socket:
    sock = await Socket.open(f"{stack.ws_url}/api/v1/ws/logs/{server_id}")
    await sock.send({"type": "auth", "token": token, "since": since.isoformat()})
    assert (await sock.recv())["type"] == "auth_success"
    return sock


async def _messages_until(sock: Socket, last: str) -> list[str]:
    seen: list[str] = []
    while not seen or seen[-1] != last:
        frame = await sock.recv_type("log")
        seen.append(frame["data"]["message"])
    return seen


async def test_resume_replays_what_was_missed_then_goes_live_without_repeats(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    token = api.token or ""
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    def line(i: int) -> dict[str, Any]:
        return log_frame(f"line {i}", timestamp=base + timedelta(seconds=i))

    first = await Socket.dashboard(stack.ws_url, "logs", server_id, token)
    for i in range(1, 6):
        await agent.send(line(i))
    seen = [(await first.recv_type("log"))["data"] for _ in range(5)]
    last_seen = datetime.fromisoformat(seen[-1]["timestamp"])
    await first.close()

    for i in range(6, 11):  # while the dashboard is away
        await agent.send(line(i))
    await eventually(lambda: _stored(api, server_id, 10))

    async def keep_sending() -> None:  # while the socket opens: replayed, live, or both
        for i in range(11, 20):  # 6..19: 14 lines, within RESUME_LIMIT
            await agent.send(line(i))
            await asyncio.sleep(0)

    sending = asyncio.create_task(keep_sending())
    resumed = await _resume(stack, server_id, token, last_seen)
    await sending
    got = await _messages_until(resumed, "line 19")
    assert len(got) == len(set(got)), f"delivered twice: {got}"
    assert sorted(got, key=lambda m: int(m.split()[1])) == [f"line {i}" for i in range(6, 20)]
    assert got[:5] == [f"line {i}" for i in range(6, 11)]  # the missed ones first, in order
    await resumed.send({"type": "ping"})
    assert (await resumed.recv())["type"] == "pong"  # nothing else was queued behind line 19
    await resumed.close()
    await agent.close()


async def test_replay_is_bounded_to_the_newest_lines(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    for i in range(40):
        await agent.send(log_frame(f"line {i}", timestamp=base + timedelta(seconds=i)))
    await eventually(lambda: _stored(api, server_id, 40))

    resumed = await _resume(stack, server_id, api.token or "", base)
    replayed = [(await resumed.recv_type("log"))["data"]["message"] for _ in range(RESUME_LIMIT)]
    assert replayed == [f"line {i}" for i in range(40 - RESUME_LIMIT, 40)]
    # sent only now: a line sent during the replay may be stored in time to be one of the newest
    await agent.send(log_frame("live"))
    assert (await resumed.recv_type("log"))["data"]["message"] == "live"
    await resumed.close()
    await agent.close()


async def test_a_bad_since_is_refused_like_any_bad_auth_frame(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    server_id, _key = await api.new_server_with_key()
    sock = await Socket.open(f"{stack.ws_url}/api/v1/ws/logs/{server_id}")
    await sock.send({"type": "auth", "token": api.token, "since": "yesterday"})
    assert (await sock.recv())["type"] == "error"
    assert await sock.closed_with() == 1008
