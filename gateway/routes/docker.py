"""`/docker/{server_id}/containers`: Docker on the server, through its agent.

Container actions report the agent's verdict with 200 (`success: false` is not an
HTTP error, DESIGN §9). Reads (list) have nothing to show when the agent failed,
so that becomes 502 (the agent's message) or 504 (no answer in time).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import ValidationError

from gateway.deps import CurrentUserId, OwnedServerId, Rpc, State
from gateway.errors import BEARER, NOT_FOUND, Responses, error
from gateway.routes.params import IdempotencyKeyHeader, command_wait
from gateway.state import GatewayState
from opswire.contract import rpc as calls
from opswire.contract.frames import CONTAINER_ID_PATTERN, DockerAction
from opswire.contract.resources import ContainerSummary, DockerActionResult, DockerResult
from opswire.runtime.rpc import RpcClient

log = logging.getLogger(__name__)

# Every route is scoped to one of the user's servers (OwnedServerId).
router = APIRouter(prefix="/docker", tags=["docker"], responses={**BEARER, **NOT_FOUND})

ContainerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=CONTAINER_ID_PATTERN,
        description="Container id or name.",
    ),
]
ContainerAction = Literal["start", "stop", "restart"]
# How long to wait for the agent (extension of DESIGN §5; default 30 s).
TimeoutS = Annotated[int, Query(ge=1, le=600, description="Seconds to wait for the agent.")]
_AGENT_ERRORS: Responses = {
    409: error("The agent is not connected"),
    429: error("Too many commands in flight for this server or user"),
}


async def _run(
    rpc: RpcClient,
    state: GatewayState,
    user_id: uuid.UUID,
    server_id: uuid.UUID,
    action: DockerAction,
    container_id: str | None = None,
    params: dict[str, Any] | None = None,
    timeout_s: int = 30,
    idempotency_key: str | None = None,
) -> DockerResult:
    wait = command_wait(timeout_s, state.settings.command_grace_s)
    request = calls.DockerRun(
        user_id=user_id,
        server_id=server_id,
        action=action,
        container_id=container_id,
        params=params or {},
        timeout_s=timeout_s,
        idempotency_key=idempotency_key,
        reply_by=wait.reply_by,
    )
    return await rpc.call_typed(calls.DOCKER_RUN, request, timeout_s=wait.rpc_timeout_s)


def _data_or_error(result: DockerResult) -> Any:
    if result.status == "timeout":
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, result.message or "Agent did not answer")
    if not result.success:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, result.message or "Docker action failed")
    return result.data


@router.get(
    "/{server_id}/containers",
    responses={
        **_AGENT_ERRORS,
        502: error("The agent could not list the containers (its message)"),
        504: error("The agent did not answer in time"),
    },
)
async def list_containers(
    server_id: OwnedServerId, user_id: CurrentUserId, rpc: Rpc, state: State, timeout_s: TimeoutS = 30
) -> list[ContainerSummary]:
    """The server's containers: `{id, name, image, state, status}` each, and whatever else
    the agent reports of them."""
    data = _data_or_error(await _run(rpc, state, user_id, server_id, "list", timeout_s=timeout_s))
    return _containers(server_id, data)


def _containers(server_id: uuid.UUID, data: Any) -> list[ContainerSummary]:
    # The agent is outside our control: keep only well-formed entries rather than fail on one.
    containers = []
    for item in data if isinstance(data, list) else ():
        try:
            containers.append(ContainerSummary.model_validate(item))
        except ValidationError:
            log.warning("malformed container entry dropped", extra={"server_id": str(server_id)})
    return containers


@router.post(
    "/{server_id}/containers/{container_id}/{action}",
    responses={
        **_AGENT_ERRORS,
        409: error("The agent is not connected, or this Idempotency-Key's first request is still running"),
    },
)
async def container_action(
    server_id: OwnedServerId,
    container_id: ContainerId,
    action: ContainerAction,
    user_id: CurrentUserId,
    rpc: Rpc,
    state: State,
    timeout_s: TimeoutS = 30,
    idempotency_key: IdempotencyKeyHeader = None,
) -> DockerActionResult:
    """Start, stop or restart a container; `success` is the agent's answer.

    The commands service audits it (`docker.requested` before dispatch, `docker.finished`).
    """
    result = await _run(
        rpc,
        state,
        user_id,
        server_id,
        action,
        container_id,
        timeout_s=timeout_s,
        idempotency_key=idempotency_key,
    )
    return DockerActionResult(command_id=result.command_id, success=result.success, message=result.message)


@router.get(
    "/{server_id}/containers/{container_id}/logs",
    responses=_AGENT_ERRORS,
)
async def container_logs(
    server_id: OwnedServerId,
    container_id: ContainerId,
    user_id: CurrentUserId,
    rpc: Rpc,
    state: State,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 100,
    timeout_s: TimeoutS = 30,
) -> DockerResult:
    """The container's last `tail` log lines as the agent returned them (`data`)."""
    return await _run(rpc, state, user_id, server_id, "logs", container_id, {"tail": tail}, timeout_s)
