"""Waiting for an agent costs no worker; in-flight commands are capped per server and per
user; a request its caller gave up on never runs. Real NATS, PostgreSQL, fake gateways."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from commands.admission import TOO_LATE
from commands.outcome import REFUSED_LATE
from commands.settings import CommandsSettings
from opswire.contract.events import DEADLINE_PASSED
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcClient, RpcError
from tests.commands.conftest import running_commands
from tests.commands.fake_gateway import FakeGateway
from tests.commands.test_shell import answering
from tests.helpers.backends import Namespace
from tests.helpers.client import eventually

SILENT_COMMANDS = 300
LONG_TIMEOUT_S = 3600


def request(user: uuid.UUID, server: uuid.UUID, timeout_s: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": str(user),
        "server_id": str(server),
        "command": "uptime",
        "timeout_s": timeout_s,
        **extra,
    }


@contextlib.asynccontextmanager
async def waiting(
    rpc: RpcClient, gateway: FakeGateway, requests: list[dict[str, Any]]
) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """The requests sent and delivered to `gateway` (whose agent never answers), still
    waiting; cancelled on exit."""
    tasks = [asyncio.create_task(rpc.call(COMMANDS_RUN, body, timeout_s=LONG_TIMEOUT_S)) for body in requests]

    async def all_delivered() -> bool:
        return gateway.deliveries.qsize() >= len(requests)

    try:
        await eventually(all_delivered, timeout_s=60)
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def over_quota(rpc: RpcClient, body: dict[str, Any]) -> RpcError:
    with pytest.raises(RpcError) as caught:
        await rpc.call(COMMANDS_RUN, body)
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s >= 1
    return caught.value


async def test_hundreds_of_silent_commands_do_not_block_another_users_command(
    commands_settings: CommandsSettings, nc: NatsClient, namespace: Namespace, streams: None
) -> None:
    """300 commands (timeout 1 h) wait on a silent agent; another user's command still
    runs at once, and once. (They used to pin all 256 handler slots.)"""
    settings = commands_settings.model_copy(update={"commands_per_server": 1000, "commands_per_user": 1000})
    flooder, flooded, bystander, their_server = (uuid.uuid4() for _ in range(4))
    rpc = RpcClient(nc, namespace.subjects, timeout_s=10.0)
    async with (
        running_commands(settings, nc),
        FakeGateway(nc, namespace.subjects, flooded) as silent,
        FakeGateway(nc, namespace.subjects, their_server, answering("up 3 days", 0)) as honest,
    ):
        flood = [request(flooder, flooded, LONG_TIMEOUT_S)] * SILENT_COMMANDS
        async with waiting(rpc, silent, flood) as pending:
            result = await rpc.call(COMMANDS_RUN, request(bystander, their_server))
            assert not any(task.done() for task in pending), "the flood is still waiting"
        assert (result["status"], result["output"]) == ("succeeded", "up 3 days")
        assert honest.deliveries.qsize() == 1, "it ran once"


async def test_in_flight_commands_are_capped_per_server_and_per_user(
    commands_settings: CommandsSettings, nc: NatsClient, namespace: Namespace, streams: None
) -> None:
    settings = commands_settings.model_copy(update={"commands_per_server": 2, "commands_per_user": 3})
    user, other_user = uuid.uuid4(), uuid.uuid4()
    busy, spare, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rpc = RpcClient(nc, namespace.subjects, timeout_s=10.0)
    async with (
        running_commands(settings, nc),
        FakeGateway(nc, namespace.subjects, busy) as silent_busy,
        FakeGateway(nc, namespace.subjects, spare) as silent_spare,
        FakeGateway(nc, namespace.subjects, third, answering("ok", 0)) as answering_third,
    ):
        async with waiting(rpc, silent_busy, [request(user, busy)] * 2):
            refused = await over_quota(rpc, request(user, busy))
            assert "server" in str(refused.detail)
            # Another server of the same user still has room (2 + 1 <= 3) ...
            async with waiting(rpc, silent_spare, [request(user, spare)]):
                # ... and now the user is at 3: any server of theirs is refused,
                refused = await over_quota(rpc, request(user, third))
                assert "user" in str(refused.detail)
                # while another user's command on that server is not theirs to count.
                result = await rpc.call(COMMANDS_RUN, request(other_user, third))
                assert result["status"] == "succeeded"
        assert answering_third.deliveries.qsize() == 1, "refused commands were never sent"
        # Slots free up when commands end (here: their callers' tasks are gone, but the
        # commands still wait for their agents until their deadline).
        history = await rpc.call(COMMANDS_HISTORY, {"server_id": str(busy)})
        assert [entry["status"] for entry in history] == ["pending", "pending"]


async def test_a_request_its_caller_gave_up_on_is_never_sent(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    server = uuid.uuid4()
    async with FakeGateway(nc, namespace.subjects, server, answering("ran", 0)) as gateway:
        late = request(uuid.uuid4(), server, reply_by=(utc_now() - timedelta(seconds=1)).isoformat())
        with pytest.raises(RpcError) as caught:
            await rpc.call(COMMANDS_RUN, late)
        assert (caught.value.code, caught.value.detail) == ("unavailable", TOO_LATE)
        # A caller that waits: its reply_by is the delivery's deadline (the gateway
        # refuses the frame after it).
        reply_by = utc_now() + timedelta(seconds=20)
        on_time = request(uuid.uuid4(), server, reply_by=reply_by.isoformat())
        assert (await rpc.call(COMMANDS_RUN, on_time))["status"] == "succeeded"
        [delivery] = [gateway.deliveries.get_nowait()]
    assert delivery.not_after == reply_by
    assert delivery.fallback_subject is not None
    assert len(await rpc.call(COMMANDS_HISTORY, {"server_id": str(server)})) == 1


async def test_a_delivery_refused_past_its_deadline_is_recorded_as_timeout(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    """The gateway refused the frame (deadline passed): the history says so, it never runs."""
    server = uuid.uuid4()
    async with FakeGateway(nc, namespace.subjects, server, delivered=False, refusal_code=DEADLINE_PASSED):
        result = await rpc.call(COMMANDS_RUN, request(uuid.uuid4(), server))
    assert (result["status"], result["message"]) == ("timeout", REFUSED_LATE)
    [entry] = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server)})
    assert (entry["command_id"], entry["status"]) == (result["command_id"], "timeout")


async def test_a_replica_takes_no_more_waiting_commands_than_its_cap(
    commands_settings: CommandsSettings, nc: NatsClient, namespace: Namespace, streams: None
) -> None:
    settings = commands_settings.model_copy(update={"max_concurrent_commands": 2})
    server = uuid.uuid4()
    rpc = RpcClient(nc, namespace.subjects, timeout_s=10.0)
    async with running_commands(settings, nc), FakeGateway(nc, namespace.subjects, server) as silent:
        async with waiting(rpc, silent, [request(uuid.uuid4(), server)] * 2):
            refused = await over_quota(rpc, request(uuid.uuid4(), server))
        assert "waiting" in str(refused.detail)
        assert silent.deliveries.qsize() == 2, "the refused one was never sent"
