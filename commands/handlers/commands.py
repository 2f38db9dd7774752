"""commands.run, commands.docker, commands.history: commands for agents and their history.

Runs and Docker actions are answered by a task each (commands/detached.py): a command
waiting for its agent holds no handler slot.
"""

from __future__ import annotations

from commands.runtime import CommandsRuntime
from opswire.contract.resources import CommandResult, DockerResult
from opswire.contract.rpc import (
    COMMANDS_HISTORY,
    COMMANDS_RUN,
    DOCKER_RUN,
    CommandHistory,
    CommandRunFor,
    DockerRun,
)
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import Page, page_budget


def register(rt: CommandsRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    async def run_command(request: CommandRunFor) -> CommandResult:
        """Run a shell command on the agent and wait for its result."""
        return await rt.service.run_shell(request)

    async def run_docker(request: DockerRun) -> DockerResult:
        """Run a Docker action through the agent and wait for its result."""
        return await rt.service.run_docker(request)

    rt.calls.serve(broker, subjects, COMMANDS_RUN, run_command)
    rt.calls.serve(broker, subjects, DOCKER_RUN, run_docker)

    @rpc_handler(broker, subjects, COMMANDS_HISTORY)
    async def command_history(request: CommandHistory) -> Page:
        """Past commands and Docker actions of a server, newest first, in pages."""
        return await rt.service.history(request, page_budget(rt.nc.max_payload))
