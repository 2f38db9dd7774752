"""Hostile input on the WebSockets and on the NATS subjects the gateway listens to (DESIGN §2-§4, §9).

Every frame the gateway accepts must be publishable and storable (nothing
accepted is ever lost), and dashboards only ever see well-formed frames.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from websockets.asyncio.client import ClientConnection, connect

from opswire.contract.events import AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.telemetry import LogLine, MetricsSample
from opswire.contract.types import utc_now
from opswire.runtime.tokens import TokenService
from tests.helpers.backends import Namespace
from tests.helpers.ws import (
    Gateway,
    Services,
    agent,
    gateway,
    log_frame,
    metrics_frame,
    ping,
    recv,
    send,
    stream_reader,
    wait_for_interest,
)

INVALID = "Invalid message format"


@pytest.fixture
async def services(nc: NatsClient, namespace: Namespace) -> AsyncIterator[Services]:
    stub = Services(nc, namespace.subjects)
    await stub.start()
    yield stub
    await stub.stop()


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def _refused(ws: ClientConnection, frame: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    reply = await recv(ws)
    await ping(ws)  # the socket stays open
    return reply


# --- agent frames: refused rather than accepted and lost later ----------------------------


@pytest.mark.parametrize(
    "frame",
    [
        metrics_frame(timestamp=None, vendor_extra=_nested(200)),
        metrics_frame(containers=[{"labels": _nested(100)}]),
        metrics_frame(vendor_extra={"note": "nul\u0000byte"}),
        log_frame(message="nul\u0000byte"),
        log_frame(source="sys\u0000log"),
        {**log_frame(), "timestamp": "0001-01-01T00:00:00+05:00"},
        metrics_frame(timestamp=None) | {"timestamp": "9999-12-31T23:59:59-05:00"},
    ],
    ids=[
        "deep-extra",
        "deep-container",
        "nul-extra",
        "nul-message",
        "nul-source",
        "before-year-1-in-utc",
        "after-year-9999-in-utc",
    ],
)
async def test_unstorable_frames_are_refused_and_nothing_is_published(
    gw: Gateway, services: Services, nc: NatsClient, frame: dict[str, Any]
) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    subject = gw.subjects.metrics(sid) if frame["type"] == "metrics" else gw.subjects.logs(sid)
    js = nc.jetstream()
    async with agent(gw, key) as ws, stream_reader(js, subject) as published:
        reply = await _refused(ws, frame)
        good = metrics_frame() if frame["type"] == "metrics" else log_frame("after the junk")
        await send(ws, good)
        first = await published.next_msg(timeout=5)
    assert (reply["type"], reply["code"], reply["message"]) == ("error", "invalid_format", INVALID), reply
    model = MetricsSample if frame["type"] == "metrics" else LogLine
    stamp = model.model_validate_json(first.data).timestamp
    assert stamp == datetime.fromisoformat(good["timestamp"])  # the junk was never published


async def test_frame_under_the_limit_too_big_to_publish_gets_an_error(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    # A frame limit above the NATS server's max_payload (an operator's own NATS with a
    # smaller limit than ours): what fits a frame may still not fit a message.
    async with gateway(nats_url, namespace, jwt_secret, max_frame_bytes=nc.max_payload + 4096) as gw:
        await _too_big_to_publish(gw, services, nc)


async def _too_big_to_publish(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    limit = nc.max_payload
    frame = metrics_frame()
    # Under the frame limit yet, with server_id and received_at added, over NATS's.
    frame["pad"] = "x" * (limit - len(json.dumps(frame)) - 40)
    raw = json.dumps(frame)
    assert len(raw) < gw.realtime.state.settings.max_frame_bytes
    js = nc.jetstream()
    async with agent(gw, key) as ws, stream_reader(js, gw.subjects.metrics(sid)) as published:
        reply = await _refused(ws, raw)
        good = metrics_frame()
        await send(ws, good)
        first = MetricsSample.model_validate_json((await published.next_msg(timeout=5)).data)
    assert reply["type"] == "error" and "too large" in reply.get("detail", ""), reply
    assert reply["code"] == "too_large"
    assert "pad" not in (first.model_extra or {})
    assert gw.realtime.publisher.pending == 0


# --- NATS -> dashboards: junk from outside never reaches a browser -------------------------


@asynccontextmanager
async def _dashboard(gw: Gateway, stream: str, sid: str, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(gw.ws(f"/ws/{stream}/{sid}")) as ws:
        await send(ws, {"type": "auth", "token": token})
        assert (await recv(ws))["type"] == "auth_success"
        yield ws


def _owned(services: Services, tokens: TokenService) -> tuple[str, str]:
    _, identity = services.add_agent()
    services.owners.add((identity.user_id, identity.server_id))
    return str(identity.server_id), tokens.issue_pair(identity.user_id).access_token


async def test_junk_on_nats_is_not_forwarded_to_dashboards(
    gw: Gateway, services: Services, nc: NatsClient, jwt_secret: str
) -> None:
    sid, token = _owned(services, TokenService(jwt_secret))
    sample = {k: v for k, v in metrics_frame().items() if k != "type"}
    sample.update(server_id=sid, received_at=utc_now().isoformat())
    line = {k: v for k, v in log_frame().items() if k != "type"}
    line.update(server_id=sid, received_at=utc_now().isoformat())
    junk = [
        b"not json",
        b"[1, 2]",
        b'{"x": 1}',
        b"\xff\xfe",
        b'{"a": "\\u0000"}',
        json.dumps({**sample, "server_id": str(uuid.uuid4())}).encode(),
        json.dumps({**line, "server_id": str(uuid.uuid4())}).encode(),
        json.dumps({**sample, "cpu_percent": 500}).encode(),
    ]
    async with (
        _dashboard(gw, "metrics", sid, token) as metrics_ws,
        _dashboard(gw, "logs", sid, token) as logs_ws,
    ):
        for subject in (gw.subjects.metrics(sid), gw.subjects.alerts(sid), gw.subjects.logs(sid)):
            await wait_for_interest(nc, subject)
        for payload in junk:
            for subject in (gw.subjects.metrics(sid), gw.subjects.alerts(sid), gw.subjects.logs(sid)):
                await nc.publish(subject, payload)
        await nc.publish(gw.subjects.metrics(sid), json.dumps(sample).encode())
        await nc.publish(gw.subjects.logs(sid), json.dumps(line).encode())
        first_metrics = await recv(metrics_ws)
        first_log = await recv(logs_ws)
    assert first_metrics == {"type": "metrics", "data": sample}
    assert first_log == {"type": "log", "data": line}


# --- NATS -> agent inbox -----------------------------------------------------------------------


async def test_delivery_without_a_usable_reply_subject_is_refused(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    frame = {"type": "command", "command_id": "c1", "command": "uptime"}
    async with agent(gw, key) as ws:
        await wait_for_interest(nc, gw.subjects.agent_inbox(str(identity.server_id)))
        for reply_subject in ("", "has space", "wild.*"):
            payload = json.dumps({"frame": frame, "reply_subject": reply_subject}).encode()
            msg = await nc.request(gw.subjects.agent_inbox(str(identity.server_id)), payload, timeout=5)
            ack = DeliveryAck.model_validate_json(msg.data)
            assert not ack.delivered and ack.detail and "Invalid delivery" in ack.detail
        await ping(ws)  # no command frame was forwarded before the pong
    assert AgentDelivery.model_validate({"frame": frame, "reply_subject": "opswire.r.x"})


# --- command responses: what the commands service must be able to record --------------------


async def _command_round_trip(
    gw: Gateway, services: Services, nc: NatsClient, responses: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], AgentReply]:
    """Deliver one command, send `responses` for it; the agent's error frames and the reply."""
    key, identity = services.add_agent()
    replies = await nc.subscribe(nc.new_inbox())
    frame = {"type": "command", "command_id": "c1", "command": "cat /bin/true"}
    delivery = json.dumps({"frame": frame, "reply_subject": replies.subject}).encode()
    errors: list[dict[str, Any]] = []
    try:
        async with agent(gw, key) as ws:
            await nc.request(gw.subjects.agent_inbox(str(identity.server_id)), delivery, timeout=5)
            assert (await recv(ws))["command_id"] == "c1"
            frames = [{"type": "command_response", "command_id": "c1", **r} for r in responses]
            for bad in frames[:-1]:
                errors.append(await _refused(ws, bad))
            await send(ws, frames[-1])
            reply = AgentReply.model_validate_json((await replies.next_msg(timeout=5)).data)
    finally:
        await replies.unsubscribe()
    return errors, reply


async def test_response_values_out_of_storable_range_are_refused(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    ok = {"output": "", "exit_code": 1, "duration_ms": 5}
    errors, reply = await _command_round_trip(
        gw,
        services,
        nc,
        [{**ok, "exit_code": 2**40}, {**ok, "exit_code": -(2**40)}, {**ok, "duration_ms": 2**31}, ok],
    )
    refused = ("error", "invalid_format", INVALID)
    assert [(e["type"], e["code"], e["message"]) for e in errors] == [refused] * 3
    assert reply.response is not None and reply.response.model_dump()["exit_code"] == 1


async def test_nul_in_command_output_is_replaced_not_refused(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    # Binary output is real and must still reach the caller; PostgreSQL text cannot hold NUL.
    errors, reply = await _command_round_trip(
        gw, services, nc, [{"output": "ELF\u0000\u0001", "exit_code": 0, "duration_ms": 1}]
    )
    assert errors == []
    assert reply.response is not None and reply.response.model_dump()["output"] == "ELF\ufffd\u0001"


async def test_many_disks_within_the_frame_limit_are_accepted(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    # A node with thousands of mounts is real; the frame size limit is the only bound (DESIGN §9).
    key, identity = services.add_agent()
    disks = [{"path": f"/m/{i}", "total": 10, "used": 1, "free": 9, "percent": 10.0} for i in range(10_000)]
    frame = metrics_frame(disk_usage=disks)
    async with (
        agent(gw, key) as ws,
        stream_reader(nc.jetstream(), gw.subjects.metrics(str(identity.server_id))) as published,
    ):
        await send(ws, frame)
        sample = MetricsSample.model_validate_json((await published.next_msg(timeout=5)).data)
    assert len(sample.disk_usage) == 10_000
