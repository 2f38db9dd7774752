"""Running shell commands and Docker actions on agents, and keeping their history."""

from __future__ import annotations

import logging
import uuid

from commands.dispatch import AgentNotConnected, DeliveryUnconfirmed, Dispatcher
from commands.docker import checked_action
from commands.events import ResultPublisher
from commands.models import CommandRecord
from commands.outcome import as_command_result, as_docker_result, from_reply, no_answer
from commands.store import CommandStore
from opswire.contract.events import AgentReply
from opswire.contract.frames import CommandFrame, DockerCommandFrame
from opswire.contract.resources import CommandResult, DockerResult
from opswire.contract.rpc import CommandHistory, CommandRunFor, DockerRun
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)


class CommandService:
    def __init__(
        self,
        store: CommandStore,
        dispatcher: Dispatcher,
        publisher: ResultPublisher,
        grace_s: float,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._publisher = publisher
        self._grace_s = grace_s

    async def run_shell(self, request: CommandRunFor) -> CommandResult:
        frame = CommandFrame(
            command_id=uuid.uuid4().hex, command=request.command, timeout_s=request.timeout_s
        )
        record = CommandRecord(
            command_id=frame.command_id,
            server_id=request.server_id,
            user_id=request.user_id,
            kind="shell",
            command=request.command,
            status="pending",
            created_at=utc_now(),
        )
        return as_command_result(await self._run(record, frame, request.timeout_s))

    async def run_docker(self, request: DockerRun) -> DockerResult:
        action = checked_action(request)
        frame = DockerCommandFrame(
            command_id=uuid.uuid4().hex,
            action=request.action,
            container_id=action.container_id,
            params=action.params,
        )
        record = CommandRecord(
            command_id=frame.command_id,
            server_id=request.server_id,
            user_id=request.user_id,
            kind="docker",
            command=action.command_text,
            action=action.action,
            container_id=action.container_id,
            params=action.params,
            status="pending",
            created_at=utc_now(),
        )
        return as_docker_result(await self._run(record, frame, request.timeout_s))

    async def history(self, request: CommandHistory) -> list[CommandResult]:
        records = await self._store.history(request.server_id, request.limit)
        return [as_command_result(record) for record in records]

    async def on_reply(self, reply: AgentReply) -> None:
        """A reply on our subject: to its waiting request, or (late) straight to the history."""
        if self._dispatcher.take(reply):
            return
        record = await self._store.get(reply.command_id)
        if record is None:
            log.warning("reply for an unknown command", extra={"command_id": reply.command_id})
            return
        finished = await self._store.finish(record.command_id, from_reply(record.kind, reply))
        if finished is not None:
            log.info(
                "late reply recorded",
                extra={"command_id": finished.command_id, "status": finished.status},
            )
            self._publisher.publish(finished)

    async def _run(
        self, record: CommandRecord, frame: CommandFrame | DockerCommandFrame, timeout_s: int
    ) -> CommandRecord:
        # Recorded before delivery, so an answer always finds its row.
        await self._store.add(record)
        context = {
            "command_id": record.command_id,
            "server_id": str(record.server_id),
            "kind": record.kind,
        }
        try:
            reply = await self._dispatcher.dispatch(
                record.server_id, frame, record.user_id, timeout_s + self._grace_s
            )
        except AgentNotConnected as exc:
            await self._store.discard(record.command_id)
            raise RpcError("conflict", str(exc)) from None
        except DeliveryUnconfirmed as exc:
            # The agent may still run it: keep the row; a reply that comes anyway updates it.
            failed = await self._store.finish(
                record.command_id,
                {
                    "status": "failed",
                    "success": False,
                    "message": str(exc),
                    "finished_at": utc_now(),
                },
                only_if_pending=True,
            )
            if failed is not None:
                self._publisher.publish(failed)
            raise RpcError("unavailable", str(exc)) from None
        if reply is None:
            finished = await self._store.finish(
                record.command_id, no_answer(), only_if_pending=True
            )
            if finished is None:
                # A late reply was recorded between our timeout and this update: it wins.
                finished = await self._store.get(record.command_id)
                if finished is None:
                    raise RpcError("internal", "Command record vanished")
                return finished
            log.info("agent did not answer in time", extra=context)
        else:
            finished = await self._store.finish(record.command_id, from_reply(record.kind, reply))
            if finished is None:
                raise RpcError("internal", "Command record vanished")
        log.info("command finished", extra=context | {"status": finished.status})
        self._publisher.publish(finished)
        return finished
