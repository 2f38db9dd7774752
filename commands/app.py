"""The commands service: dispatch commands to agents, wait for results, keep history.

Wiring only. Start-up (before any handler runs) connects NATS, migrates the
`commands` schema and ensures the JetStream streams; shutdown disposes the engine
after the broker has stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faststream import FastStream

from commands.audit import CommandAudit
from commands.dispatch import Dispatcher
from commands.events import ResultPublisher
from commands.handlers import Runtime, register_handlers
from commands.service import CommandService
from commands.settings import CommandsSettings
from commands.store import CommandStore
from opswire.contract.subjects import Subjects
from opswire.runtime.db import create_engine, migrate, session_factory
from opswire.runtime.nats import service_broker
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Result events waiting for a JetStream ack (NATS briefly away) before new ones are refused.
EVENT_BUFFER = 10_000


def create_app(settings: CommandsSettings) -> FastStream:
    subjects = Subjects(settings.subject_prefix, settings.stream_prefix)
    # Each command's reply subject is this plus a token of its own (commands/dispatch.py).
    reply_base = subjects.rpc("commands", f"replies.{settings.instance_id}")
    # Shutdown waits for commands in flight; their rows stay pending after that.
    broker = service_broker(settings, "commands", f"opswire-commands-{settings.instance_id}")
    runtime = Runtime()
    register_handlers(broker, subjects, runtime, reply_base, settings.max_concurrent_commands)

    async def start() -> None:
        engine = create_engine(settings.database_url, settings.db_pool_size)
        runtime.engine = engine
        await migrate(engine, "commands", MIGRATIONS)
        # Connect before the broker starts its subscribers, so no handler runs half-wired.
        nc = await broker.connect()
        runtime.events = Publisher(nc, capacity=EVENT_BUFFER)
        runtime.events.start()
        runtime.service = CommandService(
            store=CommandStore(session_factory(engine)),
            dispatcher=Dispatcher(nc, subjects, reply_base, settings.delivery_timeout_s),
            publisher=ResultPublisher(runtime.events, subjects, nc.max_payload),
            audit=CommandAudit(runtime.events, subjects, settings.audit_timeout_s),
            grace_s=settings.command_grace_s,
        )
        log.info("commands service ready", extra={"instance_id": settings.instance_id})

    async def subscribed() -> None:
        # The server has seen every SUB once this returns: the service is really ready.
        await broker.connection.flush()

    async def flush_events() -> None:
        # While the connection is still up: results published so far get their acks.
        if runtime.events is not None:
            await runtime.events.flush()

    async def stop() -> None:
        runtime.service = None
        if runtime.events is not None:
            await runtime.events.stop(timeout_s=0.5)
            runtime.events = None
        if runtime.engine is not None:
            await runtime.engine.dispose()
            runtime.engine = None

    return FastStream(
        broker, on_startup=[start], after_startup=[subscribed], on_shutdown=[flush_events],
        after_shutdown=[stop], logger=log
    )
