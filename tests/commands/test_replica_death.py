"""kill -9 of the commands replica that sent a command: the other replica records the
agent's answer, or closes the command as `timeout` at its deadline; nothing stays
`pending` (issue 9). The dying replica is a real `opswire commands` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from commands.settings import CommandsSettings
from opswire.contract.events import AgentDelivery, AgentReply, CommandResultEvent
from opswire.contract.rpc import COMMANDS_HISTORY, COMMANDS_RUN
from opswire.runtime.rpc import RpcClient
from tests.commands.conftest import GRACE_S, running_commands, wait_until_ready
from tests.commands.fake_gateway import FakeGateway, shell_response
from tests.commands.test_fairness import request
from tests.commands.test_shell import next_event
from tests.helpers.backends import Namespace, role_env
from tests.helpers.client import eventually

TIMEOUT_S = 2


@contextlib.contextmanager
def commands_process(
    settings: CommandsSettings, nats_url: str, namespace: Namespace, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        **role_env(nats_url, "commands"),
        **namespace.env(),
        "DATABASE_URL": settings.database_url,
        "OPSWIRE_COMMAND_GRACE_S": str(GRACE_S),
        "OPSWIRE_INSTANCE_ID": "doomed",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opswire", "commands"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def answer_as_the_gateway_does(nc: NatsClient, delivery: AgentDelivery, reply: AgentReply) -> None:
    """gateway/realtime/agent_session.py `_reply`: to the waiter, else to the fallback."""
    payload = reply.model_dump_json().encode()
    try:
        await nc.request(delivery.reply_subject, payload, timeout=1.0)
        raise AssertionError("the killed replica confirmed an answer")
    except (NoRespondersError, NatsTimeoutError):
        assert delivery.fallback_subject is not None
        await nc.publish(delivery.fallback_subject, payload)


@contextlib.asynccontextmanager
async def calls(rpc: RpcClient, bodies: list[dict[str, Any]]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(rpc.call(COMMANDS_RUN, body, timeout_s=30)) for body in bodies]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_killed_replicas_commands_end_on_the_survivor(
    commands_settings: CommandsSettings,
    nats_url: str,
    nc: NatsClient,
    namespace: Namespace,
    streams: None,
    server_id: uuid.UUID,
    results: asyncio.Queue[Msg],
    tmp_path: Path,
) -> None:
    rpc = RpcClient(nc, namespace.subjects, timeout_s=5.0)
    survivor = commands_settings.model_copy(update={"command_sweep_interval_s": 0.2})
    user = uuid.uuid4()
    with commands_process(commands_settings, nats_url, namespace, tmp_path / "doomed.log") as doomed:
        await wait_until_ready(rpc, within_s=30)
        async with (
            FakeGateway(nc, namespace.subjects, server_id) as gateway,
            calls(rpc, [request(user, server_id, TIMEOUT_S)] * 2),
        ):
            answered, silent = [await asyncio.wait_for(gateway.deliveries.get(), 10) for _ in range(2)]
            assert ".replies.doomed." in answered.reply_subject
            doomed.send_signal(signal.SIGKILL)
            await asyncio.to_thread(doomed.wait)
            async with running_commands(survivor, nc):
                reply = AgentReply(
                    server_id=server_id,
                    command_id=answered.frame.command_id,
                    response=shell_response(answered.frame, "answered after all", 0),
                )
                await answer_as_the_gateway_does(nc, answered, reply)
                first, _ = await next_event(results)
                # The other one ends at its deadline, closed by the survivor's sweep.
                second = CommandResultEvent.model_validate_json(
                    (await asyncio.wait_for(results.get(), 15)).data
                ).root

                async def settled() -> list[dict[str, Any]] | None:
                    history = await rpc.call(COMMANDS_HISTORY, {"server_id": str(server_id)})
                    done = all(entry["status"] != "pending" for entry in history)
                    return history if done and len(history) == 2 else None

                history = {entry["command_id"]: entry for entry in await eventually(settled)}
    assert (first.command_id, first.status) == (answered.frame.command_id, "succeeded")
    assert (second.command_id, second.status) == (silent.frame.command_id, "timeout")
    assert history[answered.frame.command_id]["output"] == "answered after all"
    assert history[silent.frame.command_id]["status"] == "timeout"
