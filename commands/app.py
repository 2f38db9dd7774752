"""The commands service: dispatch commands to agents, wait for results, keep history.

Wiring only, through the shared skeleton (opswire.runtime.service): NATS, the
`commands` schema, the command service (store, dispatcher, events), then the handlers.
"""

from __future__ import annotations

from faststream import FastStream

from commands.handlers import register_handlers
from commands.runtime import CommandsRuntime
from commands.settings import CommandsSettings


def create_app(settings: CommandsSettings) -> FastStream:
    runtime = CommandsRuntime(settings)
    register_handlers(runtime)
    return runtime.app()
