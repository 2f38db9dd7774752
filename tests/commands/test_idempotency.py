"""Idempotency-Key on commands and Docker actions: a retry returns the first result and
runs nothing again. Real NATS, PostgreSQL and a fake gateway."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.aio.client import Client as NatsClient

from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN, DOCKER_RUN
from opswire.runtime.rpc import RpcClient, RpcError
from tests.commands.fake_gateway import FakeGateway, Frame, Response, docker_response, shell_response
from tests.commands.test_fairness import request
from tests.commands.test_shell import answering
from tests.helpers.backends import Namespace

USER = uuid.UUID(int=8)


async def refused(rpc: RpcClient, method: object, body: dict[str, object]) -> RpcError:
    with pytest.raises(RpcError) as caught:
        await rpc.call(method, body)  # type: ignore[arg-type]
    return caught.value


async def test_a_retry_returns_the_first_result_and_the_agent_sees_it_once(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    server = uuid.uuid4()
    async with FakeGateway(nc, namespace.subjects, server, answering("first", 0)) as gateway:
        first = await rpc.call(COMMANDS_RUN, request(USER, server, idempotency_key="k-1"))
        gateway.answer = answering("second", 0)
        retry = await rpc.call(COMMANDS_RUN, request(USER, server, idempotency_key="k-1"))
        # Without a key, or with another one, it runs again.
        fresh = await rpc.call(COMMANDS_RUN, request(USER, server, idempotency_key="k-2"))
    assert first["output"] == "first" and retry == first
    assert fresh["output"] == "second" and fresh["command_id"] != first["command_id"]
    assert gateway.deliveries.qsize() == 2
    history = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server)})
    assert sorted(entry["output"] for entry in history) == ["first", "second"]


async def test_keys_are_per_user_and_server_and_tied_to_their_request(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    server = uuid.uuid4()
    async with FakeGateway(nc, namespace.subjects, server, answering("ok", 0)) as gateway:
        await rpc.call(COMMANDS_RUN, request(USER, server, idempotency_key="same"))
        other_user = await rpc.call(COMMANDS_RUN, request(uuid.uuid4(), server, idempotency_key="same"))
        assert other_user["status"] == "succeeded"
        changed = dict(request(USER, server, idempotency_key="same"), command="reboot")
        error = await refused(rpc, COMMANDS_RUN, changed)
    assert error.code == "invalid" and "different request" in str(error.detail)
    assert gateway.deliveries.qsize() == 2, "the changed request never ran"


async def test_a_duplicate_while_the_first_runs_is_a_conflict(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    server = uuid.uuid4()
    release = asyncio.Event()

    async def slow(frame: Frame) -> Response:
        await release.wait()
        return shell_response(frame, "done", 0)

    async with FakeGateway(nc, namespace.subjects, server, slow) as gateway:
        body = request(USER, server, idempotency_key="busy")
        first = asyncio.create_task(rpc.call(COMMANDS_RUN, body))
        await asyncio.wait_for(gateway.deliveries.get(), 5)
        error = await refused(rpc, COMMANDS_RUN, body)
        release.set()
        result = await first
        retry = await rpc.call(COMMANDS_RUN, body)
    assert (error.code, error.retry_after_s) == ("conflict", 1)
    assert "in progress" in str(error.detail)
    assert result["output"] == "done" and retry == result
    assert gateway.deliveries.qsize() == 0, "delivered once"


async def test_docker_actions_honour_the_key(rpc: RpcClient, nc: NatsClient, namespace: Namespace) -> None:
    server = uuid.uuid4()

    async def restarted(frame: Frame) -> Response:
        return docker_response(frame, True, "restarted")

    body = {
        "user_id": str(USER),
        "server_id": str(server),
        "action": "restart",
        "container_id": "web",
        "idempotency_key": "restart-web-1",
    }
    async with FakeGateway(nc, namespace.subjects, server, restarted) as gateway:
        first = await rpc.call(DOCKER_RUN, body)
        retry = await rpc.call(DOCKER_RUN, body)
        stop = await refused(rpc, DOCKER_RUN, dict(body, action="stop"))
    assert first["success"] is True and retry == first
    assert stop.code == "invalid"
    assert gateway.deliveries.qsize() == 1
