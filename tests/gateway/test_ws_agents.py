"""The agent socket: handshake, frames, publishing (DESIGN §2, §8, §9)."""

from __future__ import annotations

import json

import pytest
from nats.aio.client import Client as NatsClient
from websockets.asyncio.client import connect

from opswire.contract import rpc as calls
from opswire.contract.telemetry import LogLine, MetricsSample
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
    recv_until_closed,
    seconds_ago,
    send,
    stream_reader,
)

# --- handshake -------------------------------------------------------------------------------


async def test_auth_success_names_the_server(gw: Gateway, services: Services) -> None:
    key, identity = services.add_agent()
    async with connect(gw.ws("/agents/ws")) as ws:
        await send(ws, {"type": "auth", "api_key": key})
        assert await recv(ws) == {
            "type": "auth_success",
            "server_id": str(identity.server_id),
            "message": "Connected successfully",
        }
        await ping(ws)


@pytest.mark.parametrize(
    "first",
    [
        {"type": "auth", "api_key": "ow_not-a-key"},
        {"type": "auth"},
        {"type": "auth", "api_key": 42},
    ],
    ids=["unknown", "missing", "not-a-string"],
)
async def test_bad_key_is_refused_with_1008(
    gw: Gateway, services: Services, first: dict[str, object]
) -> None:
    async with connect(gw.ws("/agents/ws")) as ws:
        await send(ws, first)
        frames = await recv_until_closed(ws)
    assert frames == [{"type": "error", "code": "invalid_key", "message": "Invalid or inactive API key"}]
    assert ws.close_code == 1008


async def test_auth_service_down_closes_with_1013(gw: Gateway) -> None:
    async with connect(gw.ws("/agents/ws")) as ws:  # nobody answers auth.verify_key
        await send(ws, {"type": "auth", "api_key": "ow_whatever"})
        frames = await recv_until_closed(ws)
    assert [(f["type"], f["code"]) for f in frames] == [("error", "unavailable")]
    assert ws.close_code == 1013


async def test_auth_timeout(nats_url: str, namespace: Namespace, jwt_secret: str) -> None:
    async with gateway(nats_url, namespace, jwt_secret, auth_timeout_s=0.2) as gw:
        async with connect(gw.ws("/agents/ws")) as ws:
            frames = await recv_until_closed(ws)
    assert frames[0]["type"] == "error" and "timeout" in frames[0]["message"].lower()
    assert frames[0]["code"] == "auth_timeout"
    assert ws.close_code == 1008


@pytest.mark.parametrize(
    ("first", "code", "message"),
    [
        (json.dumps(metrics_frame()), "unauthenticated", "Authentication required"),
        ('{"type": "ping"}', "unauthenticated", "Authentication required"),
        ("not json at all", "invalid_format", "Invalid message format"),
        ("[1, 2]", "invalid_format", "Invalid message format"),
    ],
    ids=["metrics", "ping", "junk", "array"],
)
async def test_anything_before_auth_is_refused(
    gw: Gateway, services: Services, first: str, code: str, message: str
) -> None:
    async with connect(gw.ws("/agents/ws")) as ws:
        await ws.send(first)
        frames = await recv_until_closed(ws)
    assert len(frames) == 1 and (frames[0]["code"], frames[0]["message"]) == (code, message)
    assert ws.close_code == 1008


# --- frames ----------------------------------------------------------------------------------


async def test_metrics_and_logs_reach_jetstream_once(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    js = nc.jetstream()
    first, second = (
        metrics_frame(seconds_ago(10), uptime_seconds=5.0, gpu={"util": 3}),
        metrics_frame(),
    )
    async with (
        stream_reader(js, gw.subjects.metrics(sid)) as metrics,
        stream_reader(js, gw.subjects.logs(sid)) as logs,
        agent(gw, key) as ws,
    ):
        await send(ws, first)
        await send(ws, first)  # a retried frame: same timestamp, same Nats-Msg-Id
        await send(ws, second)
        await send(ws, log_frame())
        await ping(ws)  # accepted frames get no reply: the pong is the first thing back

        stored = [await metrics.next_msg(timeout=5), await metrics.next_msg(timeout=5)]
        line_msg = await logs.next_msg(timeout=5)

    samples = [MetricsSample.model_validate_json(m.data) for m in stored]
    assert [s.timestamp.isoformat() for s in samples] == [
        first["timestamp"],
        second["timestamp"],
    ]
    assert samples[0].server_id == sid and samples[0].uptime_seconds == 5.0
    assert samples[0].model_extra == {"gpu": {"util": 3}}  # extra fields kept as they came
    assert samples[0].received_at > samples[0].timestamp
    assert stored[0].headers == {"Nats-Msg-Id": f"{sid}:{first['timestamp']}"}
    info = await js.stream_info(gw.subjects.metrics_stream)
    assert info.state.messages == 2  # the duplicate was not stored

    line = LogLine.model_validate_json(line_msg.data)
    assert (line.level, line.source, line.server_id) == ("warning", "syslog", sid)
    assert line_msg.headers is not None
    msg_id = line_msg.headers["Nats-Msg-Id"]
    assert msg_id.startswith(f"{sid}:{line.timestamp.isoformat()}:") and len(msg_id.split(":")[-1]) == 16


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{not json", "not valid JSON"),
        ('"just a string"', "a frame must be a JSON object"),
        ('{"type": "teleport"}', "unknown type"),
        (json.dumps(metrics_frame(cpu_percent="lots")), "cpu_percent"),
        (json.dumps(metrics_frame(cpu_percent=150)), "cpu_percent"),
        (json.dumps(metrics_frame(memory_percent=float("nan"))), "not valid JSON"),
        (json.dumps(metrics_frame(seconds_ago(-3600))), "future"),
        (json.dumps({**log_frame(), "level": "loud"}), "level"),
        (json.dumps({"type": "command_response", "command_id": "c1"}), "output"),
    ],
    ids=[
        "junk",
        "string",
        "unknown-type",
        "wrong-type",
        "out-of-range",
        "nan",
        "future",
        "bad-level",
        "missing-field",
    ],
)
async def test_bad_frames_are_answered_and_the_socket_stays_open(
    gw: Gateway, services: Services, nc: NatsClient, raw: str, detail: str
) -> None:
    key, _ = services.add_agent()
    js = nc.jetstream()
    async with agent(gw, key) as ws:
        await ws.send(raw)
        error = await recv(ws)
        assert error["type"] == "error" and error["message"] == "Invalid message format"
        assert error["code"] == "invalid_format" and detail in error["detail"]
        await ping(ws)
    for stream in (gw.subjects.metrics_stream, gw.subjects.logs_stream):
        assert (await js.stream_info(stream)).state.messages == 0


async def test_foreign_server_id_is_rejected(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    js = nc.jetstream()
    async with agent(gw, key) as ws, stream_reader(js, gw.subjects.metrics(sid)) as metrics:
        await send(ws, metrics_frame(server_id="8d7f0b4e-0000-4000-8000-000000000000"))
        error = await recv(ws)
        assert error["message"] == "Invalid message format" and "server_id" in error["detail"]
        assert error["code"] == "invalid_format"
        await send(ws, metrics_frame(server_id=sid.upper()))  # the same id, spelled differently
        await ping(ws)
        accepted = MetricsSample.model_validate_json((await metrics.next_msg(timeout=5)).data)
    assert accepted.server_id == sid
    assert (await js.stream_info(gw.subjects.metrics_stream)).state.messages == 1


async def test_second_auth_and_unknown_command_id_get_errors(gw: Gateway, services: Services) -> None:
    key, _ = services.add_agent()
    async with agent(gw, key) as ws:
        await send(ws, {"type": "auth", "api_key": key})
        again = await recv(ws)
        assert (again["code"], again["message"]) == ("invalid_format", "Already authenticated")
        await send(ws, {"type": "command_response", "command_id": "nope", "output": "", "duration_ms": 1})
        assert await recv(ws) == {
            "type": "error",
            "code": "unknown_command",
            "message": "Unknown command_id",
            "detail": "nope",
        }
        await ping(ws)


async def test_oversized_frame_is_refused_with_1009(
    nats_url: str, namespace: Namespace, jwt_secret: str, nc: NatsClient
) -> None:
    services = Services(nc, namespace.subjects)
    await services.start(calls.AUTH_VERIFY_KEY)
    key, _ = services.add_agent()
    try:
        async with gateway(nats_url, namespace, jwt_secret, max_frame_bytes=2048) as gw:
            async with agent(gw, key) as ws:
                await send(ws, metrics_frame(padding="x" * 4096))
                frames = await recv_until_closed(ws)
    finally:
        await services.stop()
    assert frames == []  # refused by uvicorn before the gateway saw it
    assert ws.close_code == 1009
    js = nc.jetstream()
    assert (await js.stream_info(namespace.subjects.metrics_stream)).state.messages == 0
