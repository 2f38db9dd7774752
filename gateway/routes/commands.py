"""`/commands/{server_id}`: run a shell command on the server's agent, and the history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gateway.deps import CurrentUserId, OwnedServerId, Rpc, State
from gateway.errors import BEARER, NOT_FOUND, error
from gateway.routes.params import (
    CursorQuery,
    IdempotencyKeyHeader,
    command_wait,
    paged_response,
)
from opswire.contract import rpc as calls
from opswire.contract.resources import CommandResult, CommandRun

# Every route is scoped to one of the user's servers (OwnedServerId).
router = APIRouter(prefix="/commands", tags=["commands"], responses={**BEARER, **NOT_FOUND})


@router.post(
    "/{server_id}",
    responses={
        409: error("The agent is not connected, or this Idempotency-Key's first request is still running"),
        429: error("Too many commands in flight for this server or user"),
    },
)
async def run_command(
    server_id: OwnedServerId,
    body: CommandRun,
    user_id: CurrentUserId,
    rpc: Rpc,
    state: State,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CommandResult:
    """Run a command and wait for it: status `succeeded`, `failed` or `timeout` (all 200).

    The commands service audits it (`command.requested` before dispatch, `command.finished`).
    """
    wait = command_wait(body.timeout_s, state.settings.command_grace_s)
    request = calls.CommandRunFor(
        user_id=user_id,
        server_id=server_id,
        idempotency_key=idempotency_key,
        reply_by=wait.reply_by,
        **body.model_dump(),
    )
    return await rpc.call_typed(calls.COMMANDS_RUN, request, timeout_s=wait.rpc_timeout_s)


@router.get("/{server_id}/history", response_model=list[CommandResult])
async def command_history(
    http: Request,
    server_id: OwnedServerId,
    rpc: Rpc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Past commands and Docker actions with their results, newest first; `Link: rel="next"`
    leads on."""
    request = calls.CommandHistory(server_id=server_id, limit=limit, cursor=cursor)
    return paged_response(http, await rpc.call_paged(calls.COMMANDS_HISTORY, request))
