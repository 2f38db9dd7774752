"""FastStream handlers: the commands RPC methods and this replica's reply subjects."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from faststream.nats import NatsBroker, NatsMessage
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.dispatch import reply_subscription, reply_token_of
from commands.service import CommandService
from opswire.contract.events import AgentReply
from opswire.contract.resources import CommandResult, DockerResult
from opswire.contract.rpc import (
    COMMANDS_HISTORY,
    COMMANDS_PING,
    COMMANDS_RUN,
    DOCKER_RUN,
    CommandHistory,
    CommandRunFor,
    DockerRun,
    Ping,
)
from opswire.contract.subjects import Subjects
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.publisher import Publisher
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

# Late replies touch the database; let a slow one not hold up replies that are awaited.
REPLY_WORKERS = 16


@dataclass
class Runtime:
    """What start-up builds and the handlers use; empty until the app has started."""

    engine: AsyncEngine | None = None
    events: Publisher | None = None
    service: CommandService | None = field(default=None)

    def require(self) -> CommandService:
        if self.service is None:
            raise RpcError("unavailable", "The commands service is starting")
        return self.service


def register_handlers(
    broker: NatsBroker,
    subjects: Subjects,
    runtime: Runtime,
    reply_base: str,
    max_concurrent: int,
) -> None:
    @rpc_handler(broker, subjects, COMMANDS_RUN, max_workers=max_concurrent)
    async def run_command(request: CommandRunFor) -> CommandResult:
        """Run a shell command on the agent and wait for its result."""
        return await runtime.require().run_shell(request)

    @rpc_handler(broker, subjects, DOCKER_RUN, max_workers=max_concurrent)
    async def run_docker(request: DockerRun) -> DockerResult:
        """Run a Docker action through the agent and wait for its result."""
        return await runtime.require().run_docker(request)

    @rpc_handler(broker, subjects, COMMANDS_HISTORY)
    async def command_history(request: CommandHistory) -> list[CommandResult]:
        """Past commands and Docker actions of a server, newest first."""
        return await runtime.require().history(request)

    @rpc_handler(broker, subjects, COMMANDS_PING)
    async def ping(_request: Ping) -> dict[str, str]:
        """Readiness: the database answers."""
        if runtime.engine is None:
            raise RpcError("unavailable", "The commands service is starting")
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    # No queue group: every reply for this replica's commands must reach this replica.
    # One subject per command (`<reply_base>.<token>`); the token is never logged.
    @broker.subscriber(
        reply_subscription(reply_base),
        max_workers=REPLY_WORKERS,
        title="agent replies (this replica)",
        description="AgentReply from the gateway holding the agent, on the command's own subject.",
    )
    async def on_agent_reply(msg: NatsMessage) -> None:
        token = reply_token_of(msg.raw_message.subject)
        try:
            reply = AgentReply.model_validate_json(msg.body)
        except ValidationError:
            log.warning("malformed agent reply dropped", extra={"subject": reply_base})
            return
        await runtime.require().on_reply(reply, token)
