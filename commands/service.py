"""Running shell commands and Docker actions on agents, and keeping their history.

Which agent reply may change the history (DESIGN §9 'Commands'):

- Only a reply on the reply subject issued for that command (its token is stored
  with the row as `reply_token`, so any replica can check a late one) and naming
  the command's own server.
- Only the first such reply. Accepting an answer spends the token in the same
  statement that records it, so a replayed or second reply finds none.
- A command the agent answered is final. Before that, the service's own verdicts
  are provisional: `timeout` (no answer in time) and `failed` (delivery not
  confirmed). The agent's first genuine answer after one replaces it, once
  ("a response arriving after the timeout still updates the history").

Anything else changes nothing and is logged once at WARNING with the command_id
(never the output).

Before a frame leaves, its audit entry is stored (commands/audit.py); if it cannot
be, the command is refused as `unavailable` and never sent. Deadlines, quotas and
Idempotency-Keys are decided first (commands/admission.py).

Nothing stays `pending`: the waiting replica records the answer or `timeout` at the
deadline; if it died, the answer comes to any replica (commands/dispatch.py) and the
sweep (`expire`) closes what is still pending past its deadline.
"""

from __future__ import annotations

import logging
import uuid

from commands.admission import deadline_for, over_quota, replayed
from commands.audit import NOT_DELIVERED, CommandAudit
from commands.dispatch import (
    AgentNotConnected,
    DeadlinePassed,
    Dispatched,
    Dispatcher,
    new_reply_token,
    same_token,
)
from commands.docker import checked_action
from commands.events import ResultPublisher
from commands.models import CommandRecord
from commands.outcome import (
    NOT_CONFIRMED,
    REFUSED_LATE,
    Changes,
    as_command_result,
    as_docker_result,
    from_reply,
    no_answer,
)
from commands.store import CommandStore, OverQuota, Quotas
from opswire.contract.events import AgentReply
from opswire.contract.frames import CommandFrame, DockerCommandFrame
from opswire.contract.resources import CommandResult, DockerResult
from opswire.contract.rpc import CommandHistory, CommandRunFor, DockerRun
from opswire.contract.types import utc_now
from opswire.runtime import metrics
from opswire.runtime.rpc import Page, RpcError

log = logging.getLogger(__name__)

# A live waiter closes its own command at the deadline; the sweep leaves it this long.
SWEEP_SLACK_S = 1.0


class CommandService:
    def __init__(
        self,
        store: CommandStore,
        dispatcher: Dispatcher,
        publisher: ResultPublisher,
        audit: CommandAudit,
        grace_s: float,
        quotas: Quotas,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._publisher = publisher
        self._audit = audit
        self._grace_s = grace_s
        self._quotas = quotas

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
            deadline=deadline_for(request.timeout_s, self._grace_s, request.reply_by),
            idempotency_key=request.idempotency_key,
        )
        return as_command_result(await self._run(record, frame, request.user_id))

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
            deadline=deadline_for(request.timeout_s, self._grace_s, request.reply_by),
            idempotency_key=request.idempotency_key,
        )
        return as_docker_result(await self._run(record, frame, request.user_id))

    async def history(self, request: CommandHistory, budget: int) -> Page:
        return await self._store.history(request, budget)

    async def on_reply(self, reply: AgentReply, reply_token: str) -> None:
        """A reply on one of our reply subjects or the shared fallback: to its waiting
        request, or straight to the history if the rules above let it."""
        if self._dispatcher.take(reply, reply_token):
            return
        context = {"command_id": reply.command_id, "server_id": str(reply.server_id)}
        record = await self._store.get(reply.command_id)
        if record is None:
            refused = "unknown command"
        elif record.server_id != reply.server_id:
            refused = "another server's command"
        elif record.reply_token is None:
            refused = "already answered"
        elif not same_token(reply_token, record.reply_token):
            refused = "not the command's reply subject"
        else:
            finished = await self._store.answer(
                record.command_id, reply.server_id, reply_token, from_reply(record.kind, reply)
            )
            if finished is None:
                refused = "already answered"
            else:
                log.info("reply recorded without its waiter", extra=context | {"status": finished.status})
                self._finished(finished)
                return
        log.warning("agent reply ignored", extra=context | {"reason": refused})

    async def sweep(self, key_retention_s: float) -> None:
        """Close commands pending past their deadline (their replica died) as `timeout`,
        and forget Idempotency-Keys older than the retention."""
        for record in await self._store.expire(no_answer(), SWEEP_SLACK_S):
            log.warning(
                "command closed as timeout by the sweep",
                extra={"command_id": record.command_id, "server_id": str(record.server_id)},
            )
            self._finished(record)
        await self._store.forget_keys(key_retention_s)

    def _finished(self, record: CommandRecord) -> None:
        metrics.command_finished(record.kind, record.status)
        self._publisher.publish(record)
        self._audit.finished(record)

    async def _run(
        self,
        record: CommandRecord,
        frame: CommandFrame | DockerCommandFrame,
        user_id: uuid.UUID,
    ) -> CommandRecord:
        token = record.reply_token = new_reply_token()
        try:
            # Recorded before delivery, so an answer always finds its row.
            first = await self._store.admit(record, self._quotas)
        except OverQuota as exc:
            raise over_quota(exc, self._quotas) from None
        if first is not None:
            return replayed(first, record)
        if not await self._audit.requested(record, user_id):
            await self._store.discard(record.command_id)
            raise RpcError("unavailable", "The audit log is unavailable; the command was not sent")
        try:
            dispatched = await self._dispatcher.dispatch(
                record.server_id, frame, user_id, record.deadline, token
            )
        except AgentNotConnected as exc:
            await self._store.discard(record.command_id)
            self._audit.finished(record, NOT_DELIVERED)
            raise RpcError("conflict", str(exc)) from None
        except DeadlinePassed:
            return await self._conclude(record, None, no_answer(REFUSED_LATE))
        return await self._conclude(record, dispatched, None)

    async def _conclude(
        self,
        record: CommandRecord,
        dispatched: Dispatched | None,
        verdict: Changes | None,
    ) -> CommandRecord:
        """Record the answer (or the service's own verdict) unless someone else already
        did; return the row as it ends up."""
        context = {
            "command_id": record.command_id,
            "server_id": str(record.server_id),
            "kind": record.kind,
        }
        reply = dispatched.reply if dispatched is not None else None
        if reply is not None:
            finished = await self._store.answer(
                record.command_id,
                reply.server_id,
                record.reply_token or "",
                from_reply(record.kind, reply),
            )
        else:
            if verdict is None:
                confirmed = dispatched is None or dispatched.confirmed
                verdict = no_answer() if confirmed else no_answer(NOT_CONFIRMED)
            finished = await self._store.finish(record.command_id, verdict, only_if_pending=True)
            if finished is not None:
                log.info("agent did not answer in time", extra=context)
        if finished is None:
            # Recorded first elsewhere (a late reply, a copy of this one, another replica's
            # sweep) and published there: that one wins.
            current = await self._store.get(record.command_id)
            if current is None:
                raise RpcError("internal", "Command record vanished")
            return current
        log.info("command finished", extra=context | {"status": finished.status})
        self._finished(finished)
        if record.kind == "docker" and reply is not None and reply.response is None:
            # Docker on an agent gone mid-call is 409, like one not connected (DESIGN §9).
            raise RpcError("conflict", reply.error or "The agent went away before answering")
        return finished
