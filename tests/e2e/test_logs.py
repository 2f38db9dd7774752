"""Log lines end to end: agent `log` frames -> live on the logs socket and stored ->
`GET /logs/{server_id}` with level, window and limit; and each wrong request refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers.client import Api, Socket, eventually, log_frame, metrics_frame
from tests.helpers.stack import Stack

LEVELS = ["debug", "INFO", "Warning", "error", "CRITICAL"]


async def test_log_lines_stream_live_and_are_queried_newest_first(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    other_id, other_key = await api.new_server_with_key("other")
    agent = await Socket.agent(stack.ws_url, key)
    other_agent = await Socket.agent(stack.ws_url, other_key)
    dashboard = await Socket.dashboard(stack.ws_url, "logs", server_id, api.token or "")

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    stamps = [base + timedelta(seconds=i) for i in range(len(LEVELS))]
    # A metrics sample and another server's line must not show up on this logs socket.
    await agent.send(metrics_frame())
    await other_agent.send(log_frame("elsewhere", timestamp=base))
    for i, (level, stamp) in enumerate(zip(LEVELS, stamps, strict=True)):
        await agent.send(log_frame(f"line {i}", level, stamp, **({"source": "nginx"} if i % 2 else {})))

    live = [await dashboard.recv() for _ in LEVELS]
    assert [f["type"] for f in live] == ["log"] * len(LEVELS), live
    assert [f["data"]["message"] for f in live] == [f"line {i}" for i in range(len(LEVELS))]
    assert [f["data"]["level"] for f in live] == [lv.lower() for lv in LEVELS]
    assert live[1]["data"]["source"] == "nginx" and live[0]["data"].get("source") is None
    assert datetime.fromisoformat(live[2]["data"]["timestamp"]) == stamps[2]

    stored = await eventually(lambda: _logs(api, server_id, expect=len(LEVELS)))
    assert [line["message"] for line in stored] == [f"line {i}" for i in reversed(range(len(LEVELS)))]
    assert all(line["server_id"] == server_id for line in stored)
    assert stored[-1]["level"] == "debug" and stored[0]["level"] == "critical"

    async def messages(**params: Any) -> list[str]:
        reply = await api.get(f"/logs/{server_id}", params=params)
        assert reply.status_code == 200, reply.text
        return [line["message"] for line in reply.json()]

    # Minimum severity, case-insensitive.
    assert await messages(level="WARNING") == ["line 4", "line 3", "line 2"]
    assert await messages(level="Error") == ["line 4", "line 3"]
    assert await messages(level="debug") == [f"line {i}" for i in (4, 3, 2, 1, 0)]
    # start inclusive, end exclusive; limit keeps the newest.
    window = {"start": stamps[1].isoformat(), "end": stamps[3].isoformat()}
    assert await messages(**window) == ["line 2", "line 1"]
    assert await messages(limit=2) == ["line 4", "line 3"]
    assert await messages(level="info", limit=1, **window) == ["line 2"]
    assert await messages(start=(base + timedelta(hours=1)).isoformat()) == []
    other = (await api.get(f"/logs/{other_id}")).json()
    assert [line["message"] for line in other] == ["elsewhere"]

    # The live socket still works after all that: the next line arrives.
    await dashboard.send({"type": "ping"})
    assert (await dashboard.recv())["type"] == "pong"
    await agent.send(log_frame("after", "warn"))
    after = await dashboard.recv_type("log")
    assert after["data"]["message"] == "after" and after["data"]["level"] == "warning"
    for sock in (agent, other_agent, dashboard):
        await sock.close()


async def test_wrong_log_requests_are_refused_and_change_nothing(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner = await Api.new_user(http)
    stranger = await Api.new_user(http)
    server_id, key = await owner.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)

    for params in (
        {"level": "loud"},
        {"level": ""},
        {"limit": 0},
        {"limit": 10_001},
        {"limit": "many"},
        {"start": "yesterday"},
        {"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
    ):
        reply = await owner.get(f"/logs/{server_id}", params=params)
        assert reply.status_code == 422, (params, reply.text)
        assert "detail" in reply.json()
    assert (await owner.get("/logs/not-a-uuid")).status_code in (404, 422)
    assert (await stranger.get(f"/logs/{server_id}")).status_code == 404
    assert (await http.get(f"/api/v1/logs/{server_id}")).status_code == 401

    # Another user's logs socket: error, then 1008.
    peek = await Socket.open(f"{stack.ws_url}/api/v1/ws/logs/{server_id}")
    await peek.send({"type": "auth", "token": stranger.token or ""})
    assert (await peek.recv())["code"] == "not_found"
    assert await peek.closed_with() == 1008

    # Bad log frames: answered, nothing stored, the agent keeps going.
    now = datetime.now(UTC).isoformat()
    for bad in (
        {"type": "log", "level": "loud", "message": "x", "timestamp": now},
        {"type": "log", "level": "info", "timestamp": now},
        {"type": "log", "level": "info", "message": 42, "timestamp": now},
        {"type": "log", "level": "info", "message": "x", "timestamp": "soon"},
        {"type": "log", "level": "info", "message": "x", "timestamp": now, "source": "s" * 300},
    ):
        await agent.send(bad)
        error = await agent.recv()
        assert (error["type"], error["code"], error["message"]) == (
            "error",
            "invalid_format",
            "Invalid message format",
        ), (bad, error)
    await agent.send(log_frame("good"))
    stored = await eventually(lambda: _logs(owner, server_id, expect=1))
    assert [line["message"] for line in stored] == ["good"]
    await agent.close()


async def _logs(api: Api, server_id: str, expect: int) -> list[dict[str, Any]] | None:
    reply = await api.get(f"/logs/{server_id}")
    assert reply.status_code == 200, reply.text
    lines: list[dict[str, Any]] = reply.json()
    return lines if len(lines) >= expect else None
