"""Handlers of the commands service, one module per resource."""

from __future__ import annotations

from commands.handlers import commands, replies
from commands.runtime import CommandsRuntime


def register_handlers(runtime: CommandsRuntime) -> None:
    for module in (commands, replies):
        module.register(runtime)
