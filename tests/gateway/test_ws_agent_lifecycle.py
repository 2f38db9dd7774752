"""Agent connections over time: presence, replacement, control, idle, back-pressure, shutdown."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from websockets.asyncio.client import connect

from opswire.contract.events import AgentControl, PresenceEvent, PresenceHeartbeat
from opswire.contract.telemetry import MetricsSample
from opswire.runtime.nats import ensure_streams, stream_configs
from tests.helpers.backends import Namespace
from tests.helpers.ws import (
    Gateway,
    Services,
    agent,
    gateway,
    metrics_frame,
    ping,
    recv,
    recv_until_closed,
    seconds_ago,
    send,
    stream_reader,
)


async def _control(nc: NatsClient, gw: Gateway, server_id: uuid.UUID, control: AgentControl) -> None:
    await nc.publish(gw.subjects.agent_control(str(server_id)), control.model_dump_json().encode())


async def test_presence_online_then_offline(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    async with stream_reader(nc.jetstream(), gw.subjects.all_presence) as presence:
        async with agent(gw, key):
            online_msg = await presence.next_msg(timeout=1)  # DESIGN §9: online within 1 s
        offline_msg = await presence.next_msg(timeout=5)
    online = PresenceEvent.model_validate_json(online_msg.data)
    offline = PresenceEvent.model_validate_json(offline_msg.data)
    assert online_msg.subject == gw.subjects.agent_connected(str(identity.server_id))
    assert offline_msg.subject == gw.subjects.agent_disconnected(str(identity.server_id))
    assert (online.status, offline.status) == ("online", "offline")
    assert online.connection_id == offline.connection_id
    assert online.gateway_id == gw.realtime.state.gateway_id
    assert online.server_id == identity.server_id and offline.reason == "disconnected"


async def test_newer_connection_replaces_the_older_one(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    async with stream_reader(nc.jetstream(), gw.subjects.all_presence) as presence:
        async with agent(gw, key) as first:
            first_online = PresenceEvent.model_validate_json((await presence.next_msg(2)).data)
            async with agent(gw, key) as second:
                frames = await recv_until_closed(first)
                assert frames == [
                    {"type": "error", "code": "replaced", "message": "Replaced by a newer connection"}
                ]
                assert first.close_code == 4000
                await ping(second)
                events = [
                    PresenceEvent.model_validate_json((await presence.next_msg(2)).data) for _ in range(2)
                ]
                assert gw.realtime.sessions.live_server_ids() == [identity.server_id]
    by_status = {e.status: e for e in events}
    assert by_status["offline"].connection_id == first_online.connection_id
    assert by_status["offline"].reason == "replaced"
    assert by_status["online"].connection_id != first_online.connection_id


@pytest.mark.parametrize(
    ("reason", "message"), [("revoked", "API key revoked"), ("deleted", "Server deleted")]
)
async def test_control_closes_the_agent_quickly(
    gw: Gateway, services: Services, nc: NatsClient, reason: str, message: str
) -> None:
    key, identity = services.add_agent()
    async with agent(gw, key) as ws:
        started = time.monotonic()
        await _control(nc, gw, identity.server_id, AgentControl.model_validate({"reason": reason}))
        frames = await recv_until_closed(ws, timeout_s=2)
    assert time.monotonic() - started < 2
    assert frames == [{"type": "error", "code": "invalid_key", "message": message}]
    assert ws.close_code == 1008


async def test_revoking_another_key_leaves_the_agent_alone(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    async with agent(gw, key) as ws:
        other = AgentControl(reason="revoked", key_id=uuid.uuid4())
        await _control(nc, gw, identity.server_id, other)
        await nc.flush()
        await ping(ws)
        mine = AgentControl(reason="revoked", key_id=identity.key_id)
        await _control(nc, gw, identity.server_id, mine)
        revoked = {"type": "error", "code": "invalid_key", "message": "API key revoked"}
        assert await recv_until_closed(ws) == [revoked]
    assert ws.close_code == 1008


async def test_idle_agent_is_closed_and_marked_offline(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    key, _ = services.add_agent()
    async with gateway(nats_url, namespace, jwt_secret, agent_idle_timeout_s=0.3) as gw:
        async with stream_reader(nc.jetstream(), gw.subjects.all_presence) as presence:
            async with agent(gw, key) as ws:
                await ping(ws)  # activity pushes the deadline on
                frames = await recv_until_closed(ws, timeout_s=3)
            assert ws.close_code == 1008
            assert [(f["type"], f["code"]) for f in frames] == [("error", "idle_timeout")]
            assert "Idle" in frames[0]["message"]
            await presence.next_msg(timeout=2)  # online
            offline = PresenceEvent.model_validate_json((await presence.next_msg(timeout=2)).data)
    assert (offline.status, offline.reason) == ("offline", "idle")


async def test_heartbeat_lists_live_agents(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    beats = await nc.subscribe(namespace.subjects.presence_heartbeat())
    try:
        async with gateway(nats_url, namespace, jwt_secret, heartbeat_interval_s=0.1) as gw:
            async with agent(gw, key):
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    beat = PresenceHeartbeat.model_validate_json((await beats.next_msg(2)).data)
                    if beat.server_ids:
                        break
    finally:
        await beats.unsubscribe()
    assert beat.server_ids == [identity.server_id]
    assert beat.gateway_id == gw.realtime.state.gateway_id


async def test_full_buffer_is_told_and_nothing_accepted_is_lost(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    """With the metrics stream gone, the one accepted sample waits and is retried until stored."""
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    js = nc.jetstream()
    async with gateway(nats_url, namespace, jwt_secret, publish_buffer_size=1) as gw:
        async with stream_reader(js, gw.subjects.all_presence) as presence:
            async with agent(gw, key) as ws:
                await presence.next_msg(timeout=2)  # the online event is acked: buffer empty
                await js.delete_stream(gw.subjects.metrics_stream)
                kept = metrics_frame(seconds_ago(5))
                await send(ws, kept)
                await send(ws, metrics_frame())
                busy = await recv(ws)
                assert (busy["code"], busy["message"]) == ("busy", "Server busy, sample not accepted")
                assert gw.realtime.publisher.pending == 1

                config: StreamConfig = next(
                    c for c in stream_configs(gw.subjects) if c.name == gw.subjects.metrics_stream
                )
                await js.add_stream(config)
                async with stream_reader(js, gw.subjects.metrics(sid)) as metrics:
                    stored = MetricsSample.model_validate_json((await metrics.next_msg(5)).data)
                assert stored.timestamp.isoformat() == kept["timestamp"]
                await ping(ws)
    assert (await js.stream_info(namespace.subjects.metrics_stream)).state.messages == 1


async def test_gateway_shutdown_closes_agents_and_publishes_offline(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    key, _ = services.add_agent()
    await ensure_streams(nc.jetstream(), namespace.subjects)  # before the gateway exists
    async with stream_reader(nc.jetstream(), namespace.subjects.all_presence) as presence:
        async with gateway(nats_url, namespace, jwt_secret) as gw:
            ws = await connect(gw.ws("/agents/ws"))
            await send(ws, {"type": "auth", "api_key": key})
            assert (await recv(ws))["type"] == "auth_success"
        # Leaving the block stopped the gateway while the agent was still connected.
        await asyncio.wait_for(ws.wait_closed(), 5)
        statuses = [
            PresenceEvent.model_validate_json((await presence.next_msg(timeout=2)).data).status
            for _ in range(2)
        ]
    assert ws.close_code in (1001, 1012)
    assert statuses == ["online", "offline"]
