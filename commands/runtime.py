"""What the commands handlers share at run time: the shared service runtime plus the
command service (store, dispatcher, result and audit events), built at start-up."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from commands.audit import CommandAudit
from commands.detached import DetachedCalls
from commands.dispatch import Dispatcher
from commands.events import ResultPublisher
from commands.service import CommandService
from commands.settings import CommandsSettings
from commands.store import CommandStore, Quotas
from opswire.runtime.publisher import Publisher
from opswire.runtime.rpc import RpcError
from opswire.runtime.service import ServiceRuntime
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Result events waiting for a JetStream ack (NATS briefly away) before new ones are refused.
EVENT_BUFFER = 10_000


class CommandsRuntime(ServiceRuntime):
    settings: CommandsSettings

    def __init__(self, settings: CommandsSettings) -> None:
        # Shutdown gives commands in flight a moment (commands/detached.py); a row left
        # pending is closed by a live replica (its answer, or the sweep).
        super().__init__(
            settings,
            "commands",
            schema="commands",
            migrations=MIGRATIONS,
            name=f"opswire-commands-{settings.instance_id}",
        )
        # Each command's reply subject is this plus a token of its own (commands/dispatch.py).
        self.reply_base = self.subjects.rpc("commands", f"replies.{settings.instance_id}")
        # ...and the same token under this base when its replica is gone (any replica).
        self.fallback_base = self.subjects.rpc("commands", "answers")
        # Runs and Docker actions in flight: a task each, stopped (answered) at shutdown.
        self.calls = DetachedCalls(lambda: self.nc, settings.max_concurrent_commands)
        self._service: CommandService | None = None
        self.on_ready(self._start_sweep)

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
            dispatcher=Dispatcher(
                nc,
                self.subjects,
                self.reply_base,
                self.fallback_base,
                settings.delivery_timeout_s,
            ),
            publisher=ResultPublisher(events, self.subjects, nc.max_payload),
            audit=CommandAudit(events, self.subjects, settings.audit_timeout_s),
            grace_s=settings.command_grace_s,
            quotas=Quotas(settings.commands_per_server, settings.commands_per_user),
        )
        # Stopped before the publisher (newest first): replies to cancelled calls go out.
        await self.start(self.calls)

    async def _start_sweep(self) -> None:
        await self.start(LoopTask(self._sweep_forever, "commands-sweep"))

    async def _sweep_forever(self) -> None:
        """Every interval: close forgotten pending commands, forget expired keys. A failed
        round (database away) is logged and the next one tries again."""
        settings = self.settings
        while True:
            try:
                await self.service.sweep(settings.idempotency_retention_s)
            except Exception as exc:
                log.warning("command sweep failed", extra={"error": repr(exc)})
            await asyncio.sleep(settings.command_sweep_interval_s)
