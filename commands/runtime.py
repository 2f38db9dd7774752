"""What the commands handlers share at run time: the shared service runtime plus the
command service (store, dispatcher, result and audit events), built at start-up."""

from __future__ import annotations

from pathlib import Path

from commands.audit import CommandAudit
from commands.dispatch import Dispatcher
from commands.events import ResultPublisher
from commands.service import CommandService
from commands.settings import CommandsSettings
from commands.store import CommandStore
from opswire.runtime.publisher import Publisher
from opswire.runtime.rpc import RpcError
from opswire.runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"
# Result events waiting for a JetStream ack (NATS briefly away) before new ones are refused.
EVENT_BUFFER = 10_000


class CommandsRuntime(ServiceRuntime):
    settings: CommandsSettings

    def __init__(self, settings: CommandsSettings) -> None:
        # Shutdown waits for commands in flight; their rows stay pending after that.
        super().__init__(
            settings, "commands", schema="commands", migrations=MIGRATIONS,
            name=f"opswire-commands-{settings.instance_id}",
        )
        # Each command's reply subject is this plus a token of its own (commands/dispatch.py).
        self.reply_base = self.subjects.rpc("commands", f"replies.{settings.instance_id}")
        self._service: CommandService | None = None

    @property
    def service(self) -> CommandService:
        if self._service is None:
            raise RpcError("unavailable", "The commands service is not running")
        return self._service

    async def wire(self) -> None:
        settings, nc = self.settings, self.nc
        events = await self.start(Publisher(nc, capacity=EVENT_BUFFER))
        self._service = CommandService(
            store=CommandStore(self.sessions),
            dispatcher=Dispatcher(nc, self.subjects, self.reply_base, settings.delivery_timeout_s),
            publisher=ResultPublisher(events, self.subjects, nc.max_payload),
            audit=CommandAudit(events, self.subjects, settings.audit_timeout_s),
            grace_s=settings.command_grace_s,
        )
