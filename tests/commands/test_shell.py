"""COMMANDS_RUN against a real NATS, PostgreSQL and a fake gateway."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from commands.outcome import NOT_CONFIRMED
from opswire.contract.events import CommandResultEvent, DockerResultEvent, ShellResultEvent
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_PING, COMMANDS_RUN
from opswire.runtime.rpc import RpcClient, RpcError
from tests.commands.conftest import GRACE_S
from tests.commands.fake_gateway import FakeGateway, Frame, Response, shell_response
from tests.helpers.backends import Namespace

USER = uuid.UUID(int=7)


def run_request(server_id: uuid.UUID, command: str = "echo hi", timeout_s: int = 5) -> dict[str, object]:
    return {
        "user_id": str(USER),
        "server_id": str(server_id),
        "command": command,
        "timeout_s": timeout_s,
    }


async def next_event(
    results: asyncio.Queue[Msg],
) -> tuple[ShellResultEvent | DockerResultEvent, Msg]:
    msg = await asyncio.wait_for(results.get(), 5)
    return CommandResultEvent.model_validate_json(msg.data).root, msg


def answering(output: str, exit_code: int, **extra: object):  # type: ignore[no-untyped-def]
    async def answer(frame: Frame) -> Response:
        return shell_response(frame, output, exit_code, **extra)

    return answer


async def test_ping(rpc: RpcClient) -> None:
    assert await rpc.call(COMMANDS_PING, {}) == {"status": "ok"}


async def test_exit_zero_succeeds_with_output_and_event(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, answering("hi\n", 0)) as gateway:
        result = await rpc.call(COMMANDS_RUN, run_request(server_id))
        delivery = gateway.deliveries.get_nowait()

    assert delivery.requested_by == USER
    assert delivery.frame.type == "command" and delivery.frame.command == "echo hi"
    assert delivery.frame.timeout_s == 5
    assert result["command_id"] == delivery.frame.command_id
    assert result["status"] == "succeeded"
    assert (result["output"], result["exit_code"], result["duration_ms"]) == ("hi\n", 0, 42)
    assert result["kind"] == "shell" and result["finished_at"] is not None

    event, msg = await next_event(results)
    assert event.kind == "shell" and event.server_id == server_id
    assert event.command_id == result["command_id"] and event.status == "succeeded"
    # Flat, like every event (DESIGN §9): the REST object's fields at the top level.
    published = json.loads(msg.data)
    assert "result" not in published
    assert {k: published[k] for k in ("command", "output", "exit_code", "duration_ms")} == {
        "command": result["command"],
        "output": "hi\n",
        "exit_code": 0,
        "duration_ms": 42,
    }
    assert {"server_id", "timestamp", "kind", "status", "created_at"} <= published.keys()
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == f"{result['command_id']}:succeeded"


async def test_non_zero_exit_fails(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, answering("boom", 3)):
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "false"))
    assert (result["status"], result["exit_code"], result["output"]) == ("failed", 3, "boom")
    event, _ = await next_event(results)
    assert event.status == "failed"


async def test_agent_side_timeout_is_timeout(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    answer = answering("partial", -9, timed_out=True)
    async with FakeGateway(nc, namespace.subjects, server_id, answer):
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "sleep 99", timeout_s=1))
    assert (result["status"], result["output"]) == ("timeout", "partial")


async def test_agent_disconnect_fails_with_reason(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        call = asyncio.create_task(rpc.call(COMMANDS_RUN, run_request(server_id)))
        delivery = await asyncio.wait_for(gateway.deliveries.get(), 5)
        await gateway.reply(delivery, None, error="Agent disconnected")
        result = await call
    assert (result["status"], result["output"], result["message"]) == (
        "failed",
        None,
        "Agent disconnected",
    )


async def test_no_answer_times_out_and_late_reply_updates_history(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        started = time.monotonic()
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "slow", timeout_s=1))
        waited = time.monotonic() - started
        assert result["status"] == "timeout" and result["output"] is None
        # It waited out the timeout and its grace (a lower bound: load only makes it longer).
        assert waited >= 1 + GRACE_S - 0.05
        event, msg = await next_event(results)
        assert event.status == "timeout"
        assert msg.headers and msg.headers["Nats-Msg-Id"] == f"{result['command_id']}:timeout"

        delivery = gateway.deliveries.get_nowait()
        await gateway.reply(delivery, shell_response(delivery.frame, "done at last", 0))
        # The late result is stored first, then published: the event means history has it.
        event, msg = await next_event(results)

    assert event.command_id == result["command_id"] and event.status == "succeeded"
    assert msg.headers and msg.headers["Nats-Msg-Id"] == f"{result['command_id']}:succeeded"
    [entry] = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    assert entry["command_id"] == result["command_id"]
    assert (entry["status"], entry["output"], entry["exit_code"]) == (
        "succeeded",
        "done at last",
        0,
    )


async def test_no_agent_is_conflict_at_once_and_leaves_no_row(rpc: RpcClient, server_id: uuid.UUID) -> None:
    # "At once": with an hour's timeout, waiting for the agent would outlast the test itself.
    with pytest.raises(RpcError) as caught:
        await rpc.call(COMMANDS_RUN, run_request(server_id, timeout_s=3600))
    assert (caught.value.code, caught.value.detail) == ("conflict", "Agent is not connected")
    assert await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)}) == []


async def test_gateway_without_the_agent_is_conflict(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, delivered=False):
        with pytest.raises(RpcError) as caught:
            await rpc.call(COMMANDS_RUN, run_request(server_id, timeout_s=30))
    assert caught.value.code == "conflict"
    assert await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)}) == []


async def test_unconfirmed_delivery_is_waited_for_and_kept_for_a_late_reply(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    """The agent may have an unconfirmed frame: the caller is not told "unavailable" (it
    might retry and run it twice) but waits the command's time, then gets `timeout`."""
    async with FakeGateway(nc, namespace.subjects, server_id, acks=False) as gateway:
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, timeout_s=1))
        assert (result["status"], result["message"]) == ("timeout", NOT_CONFIRMED)
        event, _ = await next_event(results)
        assert event.status == "timeout"
        # The agent may have run it after all: its answer still lands in the history.
        delivery = gateway.deliveries.get_nowait()
        await gateway.reply(delivery, shell_response(delivery.frame, "ran anyway", 0))
        event, _ = await next_event(results)
    assert event.status == "succeeded"
    [entry] = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    assert (entry["status"], entry["output"]) == ("succeeded", "ran anyway")


async def test_commands_wait_side_by_side(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    """A command waiting on its agent does not hold up the next one on the same replica."""
    both_delivered = asyncio.Event()
    seen: list[str] = []

    async def answer(frame: Frame) -> Response:
        seen.append(frame.command_id)
        if len(seen) == 2:
            both_delivered.set()
        await both_delivered.wait()
        return shell_response(frame, "ok", 0)

    async with FakeGateway(nc, namespace.subjects, server_id, answer):
        first, second = await asyncio.gather(
            rpc.call(COMMANDS_RUN, run_request(server_id, "one", timeout_s=3)),
            rpc.call(COMMANDS_RUN, run_request(server_id, "two", timeout_s=3)),
        )
    assert first["status"] == second["status"] == "succeeded"


async def test_invalid_request_is_rejected(rpc: RpcClient, server_id: uuid.UUID) -> None:
    with pytest.raises(RpcError) as caught:
        await rpc.call(COMMANDS_RUN, run_request(server_id, "   "))
    assert caught.value.code == "invalid"
    with pytest.raises(RpcError) as caught:
        await rpc.call(COMMANDS_RUN, run_request(server_id, timeout_s=3601))
    assert caught.value.code == "invalid"
