"""An unmodified ChatOps agent against the whole stack (issue 13): bootstrap, auth, samples
stored once and live on a dashboard, commands and Docker actions from REST, a bad key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from nats.aio.client import Client as NatsClient

from gateway.realtime.chatops import BYTES_PER_GB
from tests.helpers.chatops_agent import AgentExit, ChatOpsAgent, FakeHost, go_map, sample_data
from tests.helpers.client import Api, Events, Socket, eventually, metrics_frame
from tests.helpers.stack import Stack

SAMPLES = 8
KEY_FAILURES = 12
STACK_ENV = {"OPSWIRE_KEY_CHECK_FAILURES_PER_MINUTE": str(KEY_FAILURES)}


async def _history(api: Api, server_id: str) -> list[dict[str, Any]]:
    reply = await api.get(f"/metrics/{server_id}/history")
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()
    return rows


async def test_a_chatops_agent_is_stored_once_live_on_a_dashboard_and_runs_rest_commands(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    host = FakeHost()
    agent = ChatOpsAgent(stack.base_url, key, host)
    await agent.start()
    assert agent.server_id == server_id, "bootstrap tells the agent its server"
    dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, str(api.token))

    # Its 5 s ticks, compressed: distinct whole-second timestamps, each sent after the last ack.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=SAMPLES + 5)
    sent, shown = [], []
    for i in range(SAMPLES):
        moment = start + timedelta(seconds=i)
        data = sample_data(
            server_id, moment, cpu=10.0 + i, memory=50.0 + i / 4, containers=FakeHost.CONTAINERS
        )
        assert await agent.send_metrics(data), f"sample {i} acked"
        sent.append((moment, data))
        shown.append((await dashboard.recv_type("metrics"))["data"])
    assert agent.reconnects == 0 and agent.bootstraps == 1, "no reconnect loop"
    assert min(agent.fragments[1:]) >= 6, "each ~27 KB sample went in 4 KiB fragments"

    # Live, on the dashboard, in our contract's fields.
    assert [s["cpu_percent"] for s in shown] == [10.0 + i for i in range(SAMPLES)]
    assert [s["memory_percent"] for s in shown] == [50.0 + i / 4 for i in range(SAMPLES)]
    assert shown[0]["disk_usage"] == [
        {
            "path": "/",
            "total": 100 * BYTES_PER_GB,
            "used": round(42.5 * BYTES_PER_GB),
            "free": round(57.5 * BYTES_PER_GB),
            "percent": 42.5,
        }
    ]
    assert shown[0]["network"][0]["interface"] == "all"

    # Stored, each exactly once, with its own timestamp and its own objects kept.
    rows = await eventually(lambda: _stored(api, server_id, SAMPLES))
    assert len(rows) == SAMPLES
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    assert stamps == [moment for moment, _ in sent]
    latest = (await api.get(f"/metrics/{server_id}")).json()
    assert latest["cpu"]["cores"] == 4 and latest["memory"]["total_gb"] == 16.0
    assert len(latest["processes"]) == 300 and latest["processes"][7]["name"] == "<defunct>"
    assert latest["containers"] == FakeHost.CONTAINERS

    results = await Events.watch(nc, stack.subjects.command_results(server_id))
    # A shell command: its exit code decides the status; the gateway measures the duration.
    ok = await api.post(f"/commands/{server_id}", json={"command": "echo hello"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "succeeded" and ok.json()["output"] == "hello\n"
    assert ok.json()["exit_code"] == 0 and isinstance(ok.json()["duration_ms"], int)
    failed = await api.post(f"/commands/{server_id}", json={"command": "printf oops; exit 3"})
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["exit_code"], failed.json()["output"]) == (
        "failed",
        3,
        "oops",
    )
    asked = [m for m in host.requests if m["type"] == "execute_command"]
    assert [m["request_id"] for m in asked] == [ok.json()["command_id"], failed.json()["command_id"]]
    assert [m["command"] for m in asked] == ["echo hello", "printf oops; exit 3"]

    # Docker: its action frames and reply types; the listing comes from the latest sample.
    restart = await api.post(f"/docker/{server_id}/containers/web/restart")
    assert restart.status_code == 200, restart.text
    assert restart.json() == {
        "command_id": restart.json()["command_id"],
        "success": True,
        "message": "Container web restarted",
    }
    assert host.requests[-1] == {
        "type": "restart_container",
        "container_id": "web",
        "request_id": restart.json()["command_id"],
    }
    ghost = await api.post(f"/docker/{server_id}/containers/ghost/stop")
    assert ghost.status_code == 200, ghost.text
    assert ghost.json()["success"] is False and "No such container: ghost" in ghost.json()["message"]
    logs = await api.get(f"/docker/{server_id}/containers/web/logs", params={"tail": 2})
    assert logs.status_code == 200, logs.text
    assert logs.json()["data"] == "web line 0\nweb line 1" and logs.json()["success"] is True
    listed = await api.get(f"/docker/{server_id}/containers")
    assert listed.status_code == 200, listed.text
    assert listed.json() == FakeHost.CONTAINERS
    assert all(m["type"] != "docker_command" for m in host.requests), "never our frames"

    # Every reply carried its request's id; results are events as for any agent.
    assert [r["request_id"] for r in agent.sent_replies] == [m["request_id"] for m in host.requests]
    events = [await results.next_data() for _ in range(6)]
    assert {e["command_id"] for e in events} >= {ok.json()["command_id"], restart.json()["command_id"]}
    await results.stop()
    assert agent.reconnects == 0
    await agent.stop()
    await dashboard.close()


async def _stored(api: Api, server_id: str, count: int) -> list[dict[str, Any]] | None:
    rows = await _history(api, server_id)
    return rows if len(rows) >= count else None


async def test_an_invalid_frame_gets_an_error_no_ack_and_the_socket_stays_open(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = ChatOpsAgent(stack.base_url, key, ack_wait_s=0.5)
    await agent.start()
    moment = datetime.now(UTC) - timedelta(seconds=30)
    broken = sample_data(server_id, moment)
    del broken["cpu"]["usage_percent"]
    await agent.write(go_map(type="metrics", data=broken))
    error = await agent.next_message()
    assert error["type"] == "error" and error["message"] == "Invalid message format"
    assert error["detail"] == "data.cpu.usage_percent: Field required"

    # Same socket: the next sample is accepted and acked.
    assert await agent.send_metrics(sample_data(server_id, moment)), "acked on the same socket"
    assert agent.reconnects == 0

    # Without an ack it does what the real agent does: drop the connection and start over.
    foreign = sample_data("00000000-0000-4000-8000-000000000000", moment + timedelta(seconds=1))
    tick = asyncio.create_task(agent.send_metrics(foreign))
    assert (await agent.next_message())["detail"] == "server_id does not match the authenticated server"
    assert not await tick
    assert agent.reconnects == 1 and agent.bootstraps == 2
    assert await agent.send_metrics(sample_data(server_id, moment + timedelta(seconds=2)))
    rows = await eventually(lambda: _stored(api, server_id, 2))
    assert [r["cpu_percent"] for r in rows] == [23.5, 23.5] and len(rows) == 2
    await agent.stop()


async def test_a_bad_key_is_refused_at_bootstrap_and_on_the_socket(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    secret = "ow_not-a-real-key-but-a-secret-all-the-same"
    with pytest.raises(AgentExit, match="API error: 401"):
        await ChatOpsAgent(stack.base_url, secret).start()
    for headers in ({"X-API-Key": secret}, {}, {"X-API-Key": "x" * 600}):
        reply = await http.get("/api/v1/api-keys/me", headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json() == {"detail": "Invalid or inactive API key"}
    gateway_log = stack.log_tail("gateway", 400)
    assert "api key rejected" in gateway_log and secret not in gateway_log

    # A revoked key: the bootstrap refuses it, and the socket answers an error and 1008.
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    me = await http.get("/api/v1/api-keys/me", headers={"X-API-Key": key})
    assert me.status_code == 200, me.text
    keys = (await api.get("/api-keys", params={"server_id": server_id})).json()
    assert me.json() == {"server_id": server_id, "key_id": keys[0]["id"], "name": "agent", "is_active": True}
    assert (await api.delete(f"/api-keys/{keys[0]['id']}")).status_code == 204
    assert (await http.get("/api/v1/api-keys/me", headers={"X-API-Key": key})).status_code == 401
    sock = await Socket.open(f"{stack.ws_url}/api/v1/agents/ws")
    await sock.send('{"api_key":"' + key + '","type":"auth"}\n')
    refused = await sock.recv()
    assert refused["type"] == "error" and refused["code"] == "invalid_key"
    assert await sock.closed_with() == 1008


async def test_seed_agents_get_no_acks(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    seed = await Socket.agent(stack.ws_url, key)
    base = datetime.now(UTC) - timedelta(seconds=20)
    for i in range(3):
        await seed.send(metrics_frame(timestamp=(base + timedelta(seconds=i)).isoformat()))
    await seed.send({"type": "ping"})
    # Frames are answered in order: anything sent for the samples would come before the pong.
    assert orjson.loads(await seed.ws.recv()) == {"type": "pong"}
    await eventually(lambda: _stored(api, server_id, 3))
    await seed.close()


async def test_an_address_sending_bad_keys_is_throttled(stack: Stack, http: httpx.AsyncClient) -> None:
    api = await Api.new_user(http)
    _, key = await api.new_server_with_key()
    statuses = []
    # Earlier tests of this module (same address) may have used part of the allowance.
    for _ in range(KEY_FAILURES + 1):
        reply = await http.get("/api/v1/api-keys/me", headers={"X-API-Key": "ow_wrong"})
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) <= {401}, statuses
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert "Too many rejected API keys" in reply.json()["detail"]
    # While it lasts, the address is refused before any key is looked up, a valid one too.
    assert (await http.get("/api/v1/api-keys/me", headers={"X-API-Key": key})).status_code == 429
