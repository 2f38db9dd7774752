"""`/servers`: the user's servers with their presence (`status`, `last_seen`).

The auth service owns servers and scopes every call to the user, so another
user's server is `not_found` there (404) without a separate ownership check.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Response, status

from gateway.deps import Audit, CurrentUserId, Rpc
from gateway.errors import BEARER, NOT_FOUND, error
from opswire.contract import rpc as calls
from opswire.contract.resources import ServerCreate, ServerPublic, ServerUpdate
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/servers", tags=["servers"], responses=BEARER)


@router.get("")
async def list_servers(user_id: CurrentUserId, rpc: Rpc) -> list[ServerPublic]:
    """The user's servers."""
    return await rpc.call_typed(calls.SERVERS_LIST, calls.ByUser(user_id=user_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: error("The per-user server limit is reached")},
)
async def create_server(body: ServerCreate, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> ServerPublic:
    """Register a server; give its agent an API key next (`POST /api-keys`)."""
    request = calls.ServerCreateFor(user_id=user_id, **body.model_dump())
    server = await rpc.call_typed(calls.SERVERS_CREATE, request)
    await audit.record(user_id, "server.create", f"server:{server.id}", {"name": server.name})
    return server


@router.get("/{server_id}", responses=NOT_FOUND)
async def get_server(server_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc) -> ServerPublic:
    """One server."""
    return await rpc.call_typed(calls.SERVERS_GET, calls.ByUserServer(user_id=user_id, server_id=server_id))


@router.put("/{server_id}", responses=NOT_FOUND)
async def update_server(
    server_id: uuid.UUID, body: ServerUpdate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ServerPublic:
    """Change some fields; the ones left out stay as they are."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    # Only the fields the client sent travel, so the service can tell "unset" from "null".
    request = {"user_id": str(user_id), "server_id": str(server_id), **changes}
    server = await rpc.call_typed(calls.SERVERS_UPDATE, request)
    await audit.record(user_id, "server.update", f"server:{server_id}", {"fields": sorted(changes)})
    return server


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_server(server_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> Response:
    """Delete the server and its keys; its agent is disconnected; its alert rules go too."""
    ref = calls.ByUserServer(user_id=user_id, server_id=server_id)
    await rpc.call_typed(calls.SERVERS_DELETE, ref)
    try:
        await rpc.call_typed(calls.SERVERS_FORGET, ref)
    except RpcError as exc:
        # The server is gone either way; its rules can no longer fire (no agent can send).
        log.warning(
            "alert rules of a deleted server not dropped",
            extra={"server_id": str(server_id), "code": exc.code},
        )
    await audit.record(user_id, "server.delete", f"server:{server_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
