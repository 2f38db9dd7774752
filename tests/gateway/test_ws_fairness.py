"""Per-connection budgets and fair shares (issue 8.3): nobody's flood hurts anyone else."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, StreamConfig
from websockets.asyncio.client import ClientConnection, connect

from opswire.runtime.nats import stream_configs
from tests.helpers.backends import Namespace
from tests.helpers.ws import (
    Gateway,
    Services,
    agent,
    eventually,
    gateway,
    log_frame,
    metrics_frame,
    ping,
    recv,
    recv_until_closed,
    seconds_ago,
    send,
    stream_reader,
)

RATE_LIMITED = {"type": "error", "code": "rate_limited", "message": "Rate limit exceeded"}
# Two samples of budget, and (at 0.01/s) no refill worth a sample while a test runs.
TWO_SAMPLES = {"agent_samples_per_s": 0.01, "agent_budget_burst_s": 200.0}


async def _until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Frames received before the pong answering a ping sent now."""
    await send(ws, {"type": "ping"})
    frames = []
    while (frame := await recv(ws)) != {"type": "pong"}:
        frames.append(frame)
    return frames


async def _stored(nc: NatsClient, gw: Gateway) -> int:
    return (await nc.jetstream().stream_info(gw.subjects.metrics_stream)).state.messages


async def test_frames_over_budget_are_refused_and_not_published(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    key, _ = services.add_agent()
    async with gateway(nats_url, namespace, jwt_secret, **TWO_SAMPLES) as gw:
        async with agent(gw, key) as ws:
            for i in range(5):
                await send(ws, metrics_frame(seconds_ago(10 - i)))
            assert await _until_pong(ws) == [RATE_LIMITED] * 3
            # Log lines have a budget of their own: still accepted.
            await send(ws, log_frame())
            assert await _until_pong(ws) == []
            assert await gw.realtime.publisher.flush(5)
        assert await _stored(nc, gw) == 2


async def test_bytes_have_a_budget_too(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services
) -> None:
    key, _ = services.add_agent()
    overrides = {"max_frame_bytes": 4096, "agent_bytes_per_s": 1024, "agent_budget_burst_s": 1.0}
    async with gateway(nats_url, namespace, jwt_secret, **overrides) as gw:
        async with agent(gw, key) as ws:
            # ~1.5 KB each: two fit the 4 KiB bucket, the third does not.
            for i in range(3):
                await send(ws, log_frame("x" * 1500, timestamp=seconds_ago(5 - i).isoformat()))
            assert await _until_pong(ws) == [RATE_LIMITED]


async def test_persistent_abuse_closes_the_socket(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services
) -> None:
    key, _ = services.add_agent()
    async with gateway(nats_url, namespace, jwt_secret, agent_abuse_refusals=3, **TWO_SAMPLES) as gw:
        async with agent(gw, key) as ws:
            for i in range(8):
                await send(ws, metrics_frame(seconds_ago(20 - i)))
            frames = await recv_until_closed(ws)
    assert frames[:2] == [RATE_LIMITED, RATE_LIMITED]
    assert frames[2] == {**RATE_LIMITED, "detail": "persistently over budget"}
    assert ws.close_code == 1008


async def test_a_flood_cannot_make_another_agent_busy(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    """With nothing acked (no metrics stream), a flooding agent fills only its share."""
    flood_key, _ = services.add_agent()
    honest_key, _ = services.add_agent()
    js = nc.jetstream()
    settings = {"publish_buffer_size": 20, "publish_min_share": 2}
    async with gateway(nats_url, namespace, jwt_secret, **settings) as gw:
        config = next(c for c in stream_configs(gw.subjects) if c.name == gw.subjects.metrics_stream)
        async with agent(gw, flood_key) as flood, agent(gw, honest_key) as honest:
            await js.delete_stream(gw.subjects.metrics_stream)
            for i in range(30):
                await send(flood, metrics_frame(seconds_ago(60 - i)))
            refused = await _until_pong(flood)
            assert [f["code"] for f in refused] == ["busy"] * 20  # its share: 20 / 2 connections
            await send(honest, metrics_frame(seconds_ago(1)))
            assert await _until_pong(honest) == []
            await js.add_stream(config)
            assert await gw.realtime.publisher.flush(15)
        assert await _stored(nc, gw) == 11  # all accepted, none lost


async def test_a_full_stream_is_told_to_the_agent(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    js = nc.jetstream()
    async with gateway(nats_url, namespace, jwt_secret) as gw:
        config: StreamConfig = next(
            c for c in stream_configs(gw.subjects) if c.name == gw.subjects.metrics_stream
        )
        await js.delete_stream(gw.subjects.metrics_stream)
        await js.add_stream(dataclasses.replace(config, max_msgs=1, discard=DiscardPolicy.NEW))
        async with agent(gw, key) as ws:
            async with stream_reader(js, gw.subjects.metrics(str(identity.server_id))) as metrics:
                await send(ws, metrics_frame(seconds_ago(2)))
                await metrics.next_msg(timeout=5)
                await send(ws, metrics_frame(seconds_ago(1)))
                told = await recv(ws)
            assert (told["code"], told["message"]) == ("storage_full", "Storage full, frame not stored")
            await ping(ws)
        assert await _stored(nc, gw) == 1


async def test_unauthenticated_sockets_per_address_have_a_ceiling(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services
) -> None:
    key, _ = services.add_agent()
    async with gateway(nats_url, namespace, jwt_secret, unauthenticated_per_address=2) as gw:
        async with connect(gw.ws("/agents/ws")) as waiting, connect(gw.ws("/agents/ws")):
            await eventually(lambda: gw.realtime.unauthenticated == 2)
            # The ceiling is per address and counts dashboard sockets too.
            async with connect(gw.ws(f"/ws/metrics/{uuid.uuid4()}")) as third:
                frames = await recv_until_closed(third)
            assert [f["code"] for f in frames] == ["rate_limited"]
            assert third.close_code == 1013
            # Once one of them has authenticated, its place is free again.
            await send(waiting, {"type": "auth", "api_key": key})
            assert (await recv(waiting))["type"] == "auth_success"
            async with agent(gw, key):
                assert gw.realtime.unauthenticated == 1
