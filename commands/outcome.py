"""What an agent's answer (or its absence) means for a command, and how a row is shown.

One place decides the status rules of DESIGN §9 'Commands' and 'Docker':
shell exit 0 -> succeeded, anything else -> failed, the agent's own timeout or
no answer in time -> timeout; a Docker action succeeds when the agent says so.
"""

from __future__ import annotations

from typing import Any

from commands.models import CommandRecord
from opswire.contract.events import AgentReply
from opswire.contract.frames import CommandResponse, DockerResponse
from opswire.contract.resources import CommandResult, DockerResult
from opswire.contract.types import utc_now

NO_ANSWER = "Agent did not answer in time"
NOT_CONFIRMED = "The gateway did not confirm delivery, and no answer came in time"
REFUSED_LATE = "Not delivered: the command's deadline had passed (it never runs)"
UNEXPECTED_ANSWER = "The agent answered with an unexpected response type"

Changes = dict[str, Any]


def from_reply(kind: str, reply: AgentReply) -> Changes:
    """Column changes for a command the agent answered (or dropped: reply.error)."""
    response = reply.response
    finished_at = reply.received_at
    if response is None:
        return {
            "status": "failed",
            "success": False,
            "message": reply.error or "The agent went away before answering",
            "finished_at": finished_at,
        }
    if kind == "shell" and isinstance(response, CommandResponse):
        return _from_command_response(response) | {"finished_at": finished_at}
    if kind == "docker" and isinstance(response, DockerResponse):
        return {
            "status": "succeeded" if response.success else "failed",
            "success": response.success,
            "message": response.message,
            "data": response.data,
            "finished_at": finished_at,
        }
    return {
        "status": "failed",
        "success": False,
        "message": UNEXPECTED_ANSWER,
        "finished_at": finished_at,
    }


def _from_command_response(response: CommandResponse) -> Changes:
    if response.timed_out:
        status = "timeout"
    elif response.exit_code == 0:
        status = "succeeded"
    else:
        status = "failed"
    return {
        "status": status,
        "success": status == "succeeded",
        "output": response.output,
        "exit_code": response.exit_code,
        "duration_ms": response.duration_ms,
        "truncated": response.truncated,
        "message": None,
    }


def no_answer(message: str = NO_ANSWER) -> Changes:
    """The service's own `timeout` verdict (no answer by the deadline, or never delivered)."""
    return {"status": "timeout", "success": False, "message": message, "finished_at": utc_now()}


def as_command_result(record: CommandRecord) -> CommandResult:
    return CommandResult(
        command_id=record.command_id,
        server_id=record.server_id,
        kind="docker" if record.kind == "docker" else "shell",
        command=record.command,
        status=record.status,  # type: ignore[arg-type]
        output=record.output,
        exit_code=record.exit_code,
        duration_ms=record.duration_ms,
        truncated=record.truncated,
        message=record.message,
        requested_by=record.user_id,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


def as_docker_result(record: CommandRecord) -> DockerResult:
    return DockerResult(
        command_id=record.command_id,
        server_id=record.server_id,
        action=record.action,  # type: ignore[arg-type]
        container_id=record.container_id,
        success=bool(record.success),
        message=record.message or "",
        data=record.data,
        status=record.status,  # type: ignore[arg-type]
        requested_by=record.user_id,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )
