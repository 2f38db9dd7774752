"""DOCKER_RUN and the shared history, against real NATS, PostgreSQL and a fake gateway."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from opswire.contract.events import CommandResultEvent
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN, DOCKER_RUN
from opswire.runtime.rpc import RpcClient, RpcError
from tests.commands.fake_gateway import (
    FakeGateway,
    Frame,
    Response,
    docker_response,
    shell_response,
)
from tests.helpers.backends import Namespace

USER = uuid.UUID(int=9)
CONTAINERS = [{"id": "abc123", "name": "web", "image": "nginx", "state": "running", "status": "Up"}]


def docker_request(server_id: uuid.UUID, action: str, **extra: object) -> dict[str, object]:
    return {"user_id": str(USER), "server_id": str(server_id), "action": action, **extra}


async def fake_agent(frame: Frame) -> Response:
    if frame.type == "command":
        return shell_response(frame, "up 3 days", 0)
    if frame.action == "list":
        return docker_response(frame, True, "1 container", CONTAINERS)
    if frame.action == "logs":
        return docker_response(frame, True, "ok", {"tail": frame.params["tail"]})
    return docker_response(frame, False, f"No such container: {frame.container_id}")


async def test_list_returns_the_agents_data(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, fake_agent) as gateway:
        result = await rpc.call(DOCKER_RUN, docker_request(server_id, "list"))
        delivery = gateway.deliveries.get_nowait()
    assert delivery.frame.type == "docker_command" and delivery.frame.action == "list"
    assert (result["success"], result["status"], result["data"]) == (True, "succeeded", CONTAINERS)
    event = CommandResultEvent.model_validate_json((await asyncio.wait_for(results.get(), 5)).data).root
    assert event.kind == "docker" and event.command_id == result["command_id"]


async def test_agent_side_failure_is_success_false(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, fake_agent):
        result = await rpc.call(DOCKER_RUN, docker_request(server_id, "stop", container_id="nope"))
    assert (result["success"], result["status"]) == (False, "failed")
    assert result["message"] == "No such container: nope"
    event = CommandResultEvent.model_validate_json((await asyncio.wait_for(results.get(), 5)).data).root
    assert event.kind == "docker" and event.status == "failed"


async def test_logs_tail_defaults_and_is_passed_on(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, fake_agent):
        default = await rpc.call(DOCKER_RUN, docker_request(server_id, "logs", container_id="web"))
        chosen = await rpc.call(
            DOCKER_RUN, docker_request(server_id, "logs", container_id="web", params={"tail": 5})
        )
    assert default["data"] == {"tail": 100} and chosen["data"] == {"tail": 5}


async def test_no_answer_is_a_timeout(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id):
        result = await rpc.call(
            DOCKER_RUN, docker_request(server_id, "restart", container_id="web", timeout_s=1)
        )
    assert (result["success"], result["status"]) == (False, "timeout")
    assert result["message"] == "Agent did not answer in time"


BAD_ACTIONS: list[dict[str, object]] = [
    {"action": "start"},
    {"action": "inspect"},
    {"action": "logs"},
    {"action": "list", "container_id": "web"},
    {"action": "logs", "container_id": "web", "params": {"tail": 0}},
    {"action": "logs", "container_id": "web", "params": {"tail": 10_001}},
    {"action": "logs", "container_id": "web", "params": {"tail": True}},
    {"action": "logs", "container_id": "web", "params": {"follow": True}},
    {"action": "stop", "container_id": "web", "params": {"force": True}},
    {"action": "remove", "container_id": "web"},
]


async def test_bad_actions_are_invalid_and_not_sent(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    # One service for all cases: each case is one RPC, the set-up is what costs.
    async with FakeGateway(nc, namespace.subjects, server_id, fake_agent) as gateway:
        for case in BAD_ACTIONS:
            request = {"user_id": str(USER), "server_id": str(server_id), **case}
            with pytest.raises(RpcError) as caught:
                await rpc.call(DOCKER_RUN, request)
            assert caught.value.code == "invalid", case
    assert gateway.deliveries.empty()
    assert await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)}) == []


async def test_no_agent_is_conflict(rpc: RpcClient, server_id: uuid.UUID) -> None:
    with pytest.raises(RpcError) as caught:
        await rpc.call(DOCKER_RUN, docker_request(server_id, "list"))
    assert caught.value.code == "conflict"


async def test_history_is_newest_first_with_both_kinds(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id, fake_agent):
        shell = await rpc.call(
            COMMANDS_RUN, {"user_id": str(USER), "server_id": str(server_id), "command": "uptime"}
        )
        listed = await rpc.call(DOCKER_RUN, docker_request(server_id, "list"))
        stopped = await rpc.call(DOCKER_RUN, docker_request(server_id, "stop", container_id="db"))
    other_server = await rpc.call(COMMANDS_HISTORY, {"server_id": str(uuid.uuid4())})
    history = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    newest_two = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id), "limit": 2})

    assert other_server == []
    assert [entry["command_id"] for entry in history] == [
        stopped["command_id"],
        listed["command_id"],
        shell["command_id"],
    ]
    assert [entry["kind"] for entry in history] == ["docker", "docker", "shell"]
    assert [entry["command"] for entry in history] == ["docker stop db", "docker list", "uptime"]
    assert [entry["status"] for entry in history] == ["failed", "succeeded", "succeeded"]
    assert history[0]["message"] == "No such container: db"
    assert history[2]["output"] == "up 3 days" and history[2]["requested_by"] == str(USER)
    assert [entry["command_id"] for entry in newest_two] == [
        stopped["command_id"],
        listed["command_id"],
    ]


async def test_an_agent_gone_mid_call_is_conflict_and_recorded(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        calling = asyncio.ensure_future(rpc.call(DOCKER_RUN, docker_request(server_id, "list")))
        delivery = await gateway.deliveries.get()
        # What the gateway answers for a pending command when the agent's socket closes.
        await gateway.reply(delivery, None, error="Agent disconnected")
        with pytest.raises(RpcError) as caught:
            await calling
    assert caught.value.code == "conflict" and caught.value.detail == "Agent disconnected"
    (entry,) = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    assert (entry["command_id"], entry["status"]) == (delivery.frame.command_id, "failed")
