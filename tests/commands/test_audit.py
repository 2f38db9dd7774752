"""A command's audit entries: stored before the agent gets the command, or the command is
not sent; a completion entry afterwards. Real NATS (JetStream) and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from commands.audit import AUDIT_COMMAND_CHARS
from opswire.contract.events import AgentDelivery, AuditEvent
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN, DOCKER_RUN
from opswire.runtime.rpc import RpcClient, RpcError
from tests.commands.fake_gateway import (
    FakeGateway,
    Frame,
    Response,
    docker_response,
    shell_response,
)
from tests.commands.test_shell import USER, answering, run_request
from tests.helpers.backends import Namespace


class StoredAudit:
    """The newest audit entry of USER in JetStream, looked up when a delivery arrives."""

    def __init__(self, nc: NatsClient, namespace: Namespace) -> None:
        self._js = nc.jetstream()
        self.subject = namespace.subjects.audit(str(USER))
        self.seen: list[AuditEvent | None] = []

    async def newest(self) -> tuple[AuditEvent, str | None] | None:
        try:
            stream = await self._js.find_stream_name_by_subject(self.subject)
            msg = await self._js.get_last_msg(stream, self.subject)
        except NotFoundError:
            return None
        assert msg.data is not None
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        return AuditEvent.model_validate_json(msg.data), msg_id

    async def on_delivery(self, delivery: AgentDelivery) -> None:
        found = await self.newest()
        if found is None:
            self.seen.append(None)
            return
        event, msg_id = found
        assert msg_id == str(event.id), "the entry's id is its Nats-Msg-Id"
        self.seen.append(event)


@pytest.fixture
async def audit_feed(nc: NatsClient, namespace: Namespace) -> AsyncIterator[asyncio.Queue[AuditEvent]]:
    """Every audit entry of USER, in the order published."""
    queue: asyncio.Queue[AuditEvent] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        queue.put_nowait(AuditEvent.model_validate_json(msg.data))

    sub = await nc.subscribe(namespace.subjects.audit(str(USER)), cb=collect)
    await nc.flush()
    yield queue
    await sub.unsubscribe()


async def next_audit(feed: asyncio.Queue[AuditEvent]) -> AuditEvent:
    return await asyncio.wait_for(feed.get(), 5)


async def test_the_request_is_in_the_audit_stream_before_the_agent_gets_it(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    audit_feed: asyncio.Queue[AuditEvent],
) -> None:
    stored = StoredAudit(nc, namespace)
    async with FakeGateway(
        nc, namespace.subjects, server_id, answering("hi\n", 0), on_delivery=stored.on_delivery
    ):
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "echo hi"))

    [before] = stored.seen
    assert before is not None, "no audit entry when the delivery arrived"
    assert (before.user_id, before.action, before.target) == (
        USER,
        "command.requested",
        f"server:{server_id}",
    )
    assert before.detail == {
        "command_id": result["command_id"],
        "command": "echo hi",
        "command_truncated": False,
    }
    assert await next_audit(audit_feed) == before
    finished = await next_audit(audit_feed)
    assert (finished.action, finished.target) == ("command.finished", f"server:{server_id}")
    assert finished.detail == {
        "command_id": result["command_id"],
        "status": "succeeded",
        "exit_code": 0,
    }
    assert finished.id != before.id
    assert audit_feed.empty()


async def test_a_docker_action_is_audited_before_and_after(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    audit_feed: asyncio.Queue[AuditEvent],
) -> None:
    async def restarted(frame: Frame) -> Response:
        return docker_response(frame, True, "restarted")

    stored = StoredAudit(nc, namespace)
    async with FakeGateway(nc, namespace.subjects, server_id, restarted, on_delivery=stored.on_delivery):
        result = await rpc.call(
            DOCKER_RUN,
            {"user_id": str(USER), "server_id": str(server_id), "action": "restart", "container_id": "web"},
        )

    [before] = stored.seen
    assert before is not None and before.action == "docker.requested"
    assert before.detail is not None
    assert (before.detail["command_id"], before.detail["command"]) == (
        result["command_id"],
        "docker restart web",
    )
    assert (before.detail["action"], before.detail["container_id"]) == ("restart", "web")
    assert await next_audit(audit_feed) == before
    finished = await next_audit(audit_feed)
    assert finished.action == "docker.finished"
    assert finished.detail == {
        "command_id": result["command_id"],
        "status": "succeeded",
        "container_id": "web",
        "success": True,
    }


async def test_a_long_command_line_is_cut_in_the_audit_only(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    audit_feed: asyncio.Queue[AuditEvent],
) -> None:
    command = "echo " + "x" * (AUDIT_COMMAND_CHARS * 3)
    async with FakeGateway(nc, namespace.subjects, server_id, answering("", 0)):
        await rpc.call(COMMANDS_RUN, run_request(server_id, command))
    requested = await next_audit(audit_feed)
    assert requested.detail is not None
    assert requested.detail["command"] == command[:AUDIT_COMMAND_CHARS]
    assert requested.detail["command_truncated"] is True
    [entry] = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    assert entry["command"] == command


async def test_no_audit_no_delivery(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
) -> None:
    js = nc.jetstream()
    subject = namespace.subjects.audit(str(USER))
    await js.delete_stream(await js.find_stream_name_by_subject(subject))

    async with FakeGateway(nc, namespace.subjects, server_id, answering("ran", 0)) as gateway:
        with pytest.raises(RpcError) as caught:
            await rpc.call(COMMANDS_RUN, run_request(server_id))
        assert caught.value.code == "unavailable"
        assert "audit" in str(caught.value.detail)
        with pytest.raises(RpcError) as caught:
            await rpc.call(
                DOCKER_RUN,
                {"user_id": str(USER), "server_id": str(server_id), "action": "list"},
            )
        assert caught.value.code == "unavailable"
        assert gateway.deliveries.empty(), "nothing was sent unaudited"

    assert await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)}) == []
    assert results.empty()


async def test_a_command_no_agent_took_is_audited_as_not_delivered(
    rpc: RpcClient, server_id: uuid.UUID, audit_feed: asyncio.Queue[AuditEvent]
) -> None:
    with pytest.raises(RpcError) as caught:
        await rpc.call(COMMANDS_RUN, run_request(server_id))
    assert caught.value.code == "conflict"
    requested = await next_audit(audit_feed)
    finished = await next_audit(audit_feed)
    assert requested.action == "command.requested" and finished.action == "command.finished"
    assert requested.detail is not None and finished.detail is not None
    assert finished.detail == {"command_id": requested.detail["command_id"], "status": "not_delivered"}


async def test_a_late_answer_after_the_timeout_is_a_second_completion_entry(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    audit_feed: asyncio.Queue[AuditEvent],
) -> None:
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "slow", timeout_s=1))
        assert result["status"] == "timeout"
        assert (await next_audit(audit_feed)).action == "command.requested"
        timed_out = await next_audit(audit_feed)
        delivery = gateway.deliveries.get_nowait()
        await gateway.reply(delivery, shell_response(delivery.frame, "done", 0))
        answered = await next_audit(audit_feed)

    assert timed_out.detail is not None and timed_out.detail["status"] == "timeout"
    assert answered.action == "command.finished"
    assert answered.detail == {"command_id": result["command_id"], "status": "succeeded", "exit_code": 0}
    assert answered.id != timed_out.id
