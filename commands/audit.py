"""A command's entries in the audit log, `<prefix>.audit.<user_id>` (DESIGN §8: every
command and Docker action is audited with who asked for it before it is dispatched).

- `command.requested` / `docker.requested`: who asked (the event's user_id), the
  server (target), the command_id and what is to run, the command line cut to
  `AUDIT_COMMAND_CHARS`. Awaited: JetStream has stored it before the frame leaves,
  and if it cannot be stored in time the command is refused and never sent.
- `command.finished` / `docker.finished`: the status once the history has it (again
  when the agent's late answer replaces the service's own timeout), or
  `not_delivered` when no agent took the command.

Entry ids are derived from the command (and its outcome) and used as the
Nats-Msg-Id, so a retry, or the same outcome reached twice, is stored once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from commands.models import CommandRecord
from opswire.contract.events import AuditEvent
from opswire.contract.subjects import Subjects
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

# Enough to see what ran; the whole line stays in the command history.
AUDIT_COMMAND_CHARS = 512
NOT_DELIVERED = "not_delivered"
_IDS = uuid.UUID("5d0c1f5e-8f3a-4c7e-9a51-0c6f1f4b2d77")


def entry_id(command_id: str, what: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"{command_id}:{what}")


def _action(record: CommandRecord, what: str) -> str:
    return f"{'docker' if record.kind == 'docker' else 'command'}.{what}"


def requested_event(record: CommandRecord, user_id: uuid.UUID) -> AuditEvent:
    text = record.command
    detail: dict[str, Any] = {
        "command_id": record.command_id,
        "command": text[:AUDIT_COMMAND_CHARS],
        "command_truncated": len(text) > AUDIT_COMMAND_CHARS,
    }
    if record.kind == "docker":
        detail |= {"action": record.action, "container_id": record.container_id}
    return AuditEvent(
        id=entry_id(record.command_id, "requested"),
        user_id=user_id,
        action=_action(record, "requested"),
        target=f"server:{record.server_id}",
        detail=detail,
    )


def finished_event(record: CommandRecord, user_id: uuid.UUID, status: str) -> AuditEvent:
    detail: dict[str, Any] = {"command_id": record.command_id, "status": status}
    if status != NOT_DELIVERED:
        if record.kind == "docker":
            detail |= {"container_id": record.container_id, "success": record.success}
        else:
            detail["exit_code"] = record.exit_code
    # The service's own verdict (no answer in time) and the agent's answer may carry the
    # same status; they are different entries. A spent reply token means "answered".
    source = "answer" if record.reply_token is None else "verdict"
    return AuditEvent(
        id=entry_id(record.command_id, f"finished:{status}:{source}"),
        user_id=user_id,
        action=_action(record, "finished"),
        target=f"server:{record.server_id}",
        detail=detail,
    )


class CommandAudit:
    def __init__(self, out: Publisher, subjects: Subjects, timeout_s: float) -> None:
        self._out = out
        self._subjects = subjects
        self._timeout_s = timeout_s

    async def requested(self, record: CommandRecord, user_id: uuid.UUID) -> bool:
        """Store the request entry; False if JetStream did not confirm it in time."""
        event = requested_event(record, user_id)
        stored = await self._out.publish_acked(
            self._subjects.audit(str(user_id)),
            event.model_dump_json().encode(),
            str(event.id),
            self._timeout_s,
        )
        if not stored:
            log.error(
                "audit entry not stored; command refused",
                extra={"command_id": record.command_id, "server_id": str(record.server_id)},
            )
        return stored

    def finished(self, record: CommandRecord, status: str | None = None) -> None:
        """Hand the completion entry to the reliable publisher (retried until stored)."""
        if record.user_id is None:
            return
        event = finished_event(record, record.user_id, status or record.status)
        taken = self._out.submit(
            self._subjects.audit(str(record.user_id)),
            event.model_dump_json().encode(),
            str(event.id),
            force=True,
        )
        if not taken:
            # Only while shutting down; the history has the result.
            log.error("completion audit entry not published", extra={"command_id": record.command_id})
