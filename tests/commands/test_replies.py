"""Which agent replies may change a command's history: only the first one, on the command's
own reply subject, naming its server (commands/service.py). Real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from opswire.contract.events import AgentDelivery, CommandResultEvent
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN
from opswire.runtime.rpc import RpcClient
from tests.commands.fake_gateway import FakeGateway, shell_response
from tests.commands.test_shell import answering, next_event, run_request
from tests.helpers.backends import Namespace
from tests.helpers.client import eventually

IGNORED = "agent reply ignored"


def other_subject(delivery: AgentDelivery) -> str:
    """This replica's reply subject with a token of our own: what a forger could guess."""
    base, _, token = delivery.reply_subject.rpartition(".")
    assert len(token) >= 32, "the token is long enough not to be guessed"
    return f"{base}.{secrets.token_hex(16)}"


def ignored_records(caplog: pytest.LogCaptureFixture, command_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == IGNORED and getattr(r, "command_id", None) == command_id
    ]


async def ignored(caplog: pytest.LogCaptureFixture, command_id: str, count: int) -> None:
    """Wait until `count` replies for the command were ignored, each logged once."""

    async def enough() -> list[logging.LogRecord] | None:
        records = ignored_records(caplog, command_id)
        return records if len(records) >= count else None

    records = await eventually(enough, timeout_s=5)
    assert len(records) == count
    for record in records:
        assert record.levelno == logging.WARNING
        assert "forged" not in repr(record.__dict__), "never the output"


async def history(rpc: RpcClient, server_id: uuid.UUID) -> dict[str, Any]:
    [entry] = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
    assert isinstance(entry, dict)
    return entry


async def test_forged_and_replayed_replies_leave_a_finished_command_alone(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="commands")
    async with FakeGateway(nc, namespace.subjects, server_id, answering("real", 0)) as gateway:
        result = await rpc.call(COMMANDS_RUN, run_request(server_id))
        delivery = gateway.deliveries.get_nowait()
        assert result["status"] == "succeeded"
        await next_event(results)
        before = await history(rpc, server_id)

        forged = shell_response(delivery.frame, "forged", 1)
        # Guessed subject; the genuine subject again (a replay, changed or not).
        await gateway.reply(delivery, forged, subject=other_subject(delivery))
        await gateway.reply(delivery, forged)
        await gateway.reply(delivery, shell_response(delivery.frame, "real", 0))
        await gateway.reply(delivery, None, error="Agent disconnected")
        await ignored(caplog, result["command_id"], 4)

    assert await history(rpc, server_id) == before
    assert (before["status"], before["output"], before["exit_code"]) == ("succeeded", "real", 0)
    assert results.empty(), "nothing finished again"


async def test_reply_on_a_wrong_subject_is_ignored_and_the_real_answer_completes(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="commands")
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        call = asyncio.create_task(rpc.call(COMMANDS_RUN, run_request(server_id)))
        delivery = await asyncio.wait_for(gateway.deliveries.get(), 5)
        command_id = delivery.frame.command_id
        await gateway.reply(
            delivery, shell_response(delivery.frame, "forged", 0), subject=other_subject(delivery)
        )
        await ignored(caplog, command_id, 1)
        assert not call.done(), "still waiting for the real answer"
        await gateway.reply(delivery, shell_response(delivery.frame, "real", 3))
        result = await call

    assert (result["command_id"], result["status"], result["output"]) == (command_id, "failed", "real")
    entry = await history(rpc, server_id)
    assert (entry["status"], entry["output"], entry["exit_code"]) == ("failed", "real", 3)


async def test_reply_in_another_servers_name_is_ignored(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="commands")
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        call = asyncio.create_task(rpc.call(COMMANDS_RUN, run_request(server_id)))
        delivery = await asyncio.wait_for(gateway.deliveries.get(), 5)
        # The right subject, but another server claims the answer.
        await gateway.reply(delivery, shell_response(delivery.frame, "forged", 0), server_id=uuid.uuid4())
        await ignored(caplog, delivery.frame.command_id, 1)
        assert not call.done()
        await gateway.reply(delivery, shell_response(delivery.frame, "real", 0))
        result = await call

    assert (result["status"], result["output"]) == ("succeeded", "real")


async def test_a_late_answer_replaces_the_timeout_once(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="commands")
    async with FakeGateway(nc, namespace.subjects, server_id) as gateway:
        result = await rpc.call(COMMANDS_RUN, run_request(server_id, "slow", timeout_s=1))
        assert result["status"] == "timeout"
        event, _ = await next_event(results)
        assert event.status == "timeout"
        delivery = gateway.deliveries.get_nowait()
        command_id = delivery.frame.command_id

        # Late and forged first: another server's name, a guessed subject.
        late = shell_response(delivery.frame, "forged", 0)
        await gateway.reply(delivery, late, server_id=uuid.uuid4())
        await gateway.reply(delivery, late, subject=other_subject(delivery))
        await ignored(caplog, command_id, 2)
        assert (await history(rpc, server_id))["status"] == "timeout"
        assert results.empty()

        await gateway.reply(delivery, shell_response(delivery.frame, "done at last", 0))
        msg = await asyncio.wait_for(results.get(), 5)
        event = CommandResultEvent.model_validate_json(msg.data).root
        assert (event.command_id, event.status) == (command_id, "succeeded")

        # A second late answer, genuine subject and server: the first one stays.
        await gateway.reply(delivery, shell_response(delivery.frame, "forged again", 2))
        await ignored(caplog, command_id, 3)

    entry = await history(rpc, server_id)
    assert (entry["status"], entry["output"], entry["exit_code"]) == ("succeeded", "done at last", 0)
    assert results.empty()


async def test_reply_for_an_unknown_command_is_ignored(
    rpc: RpcClient,
    nc: NatsClient,
    namespace: Namespace,
    server_id: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="commands")
    async with FakeGateway(nc, namespace.subjects, server_id, answering("ok", 0)) as gateway:
        await rpc.call(COMMANDS_RUN, run_request(server_id))
        delivery = gateway.deliveries.get_nowait()
        stranger = delivery.model_copy(
            update={"frame": delivery.frame.model_copy(update={"command_id": "f" * 32})}
        )
        await gateway.reply(stranger, shell_response(stranger.frame, "forged", 0))
        await ignored(caplog, "f" * 32, 1)
    assert len(await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})) == 1
