"""auth.servers.* and auth.authorize: a user's own servers; anyone else's are "not found"."""

from __future__ import annotations

import logging

from auth import store
from auth.models import Server
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.events import AgentControl
from opswire.contract.resources import ServerPublic
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

SERVER_NOT_FOUND = "Server not found"
# Columns that may not be NULL: an explicit null for them means "leave as is".
_REQUIRED = frozenset({"name"})


def public(server: Server) -> ServerPublic:
    return ServerPublic.model_validate(server, from_attributes=True)


def register(rt: AuthRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.SERVERS_LIST)
    async def list_servers(req: calls.ByUser) -> list[ServerPublic]:
        """The user's servers, oldest first."""
        async with rt.sessions() as session:
            return [public(s) for s in await store.list_servers(session, req.user_id)]

    @rpc_handler(broker, subjects, calls.SERVERS_CREATE)
    async def create_server(req: calls.ServerCreateFor) -> ServerPublic:
        """A new server owned by the user, offline until its agent connects."""
        server = Server(
            owner_id=req.user_id, name=req.name, hostname=req.hostname, description=req.description
        )
        limit = rt.settings.max_servers_per_user
        async with rt.sessions.begin() as session:
            if await store.lock_user(session, req.user_id) is None:
                raise RpcError("not_found", "User not found")
            if await store.count_servers(session, req.user_id) >= limit:
                raise RpcError("conflict", f"Server limit reached ({limit} per user)")
            session.add(server)
        log.info("server created", extra={"server_id": str(server.id), "user_id": str(req.user_id)})
        return public(server)

    @rpc_handler(broker, subjects, calls.SERVERS_GET)
    async def get_server(req: calls.ByUserServer) -> ServerPublic:
        """One of the user's servers."""
        async with rt.sessions() as session:
            server = await store.owned_server(session, req.user_id, req.server_id)
        if server is None:
            raise RpcError("not_found", SERVER_NOT_FOUND)
        return public(server)

    @rpc_handler(broker, subjects, calls.SERVERS_UPDATE)
    async def update_server(req: calls.ServerUpdateFor) -> ServerPublic:
        """Partial update: only the fields the caller sent change."""
        sent = req.model_fields_set - {"user_id", "server_id"}
        changes = {
            name: getattr(req, name)
            for name in sent
            if not (name in _REQUIRED and getattr(req, name) is None)
        }
        async with rt.sessions.begin() as session:
            server = await store.update_server(session, req.user_id, req.server_id, changes)
            if server is None:
                raise RpcError("not_found", SERVER_NOT_FOUND)
        return public(server)

    @rpc_handler(broker, subjects, calls.SERVERS_DELETE)
    async def delete_server(req: calls.ByUserServer) -> dict[str, bool]:
        """Delete the server and its keys, then close its agent wherever it is connected."""
        async with rt.sessions.begin() as session:
            deleted = await store.delete_server(session, req.user_id, req.server_id)
        if not deleted:
            raise RpcError("not_found", SERVER_NOT_FOUND)
        await rt.publish_core(AgentControl(reason="deleted"), subjects.agent_control(str(req.server_id)))
        log.info("server deleted", extra={"server_id": str(req.server_id), "user_id": str(req.user_id)})
        return {"deleted": True}

    @rpc_handler(broker, subjects, calls.AUTH_AUTHORIZE)
    async def authorize(req: calls.ByUserServer) -> dict[str, bool]:
        """ok if the user owns the server; not_found otherwise (never told apart)."""
        async with rt.sessions() as session:
            server = await store.owned_server(session, req.user_id, req.server_id)
        if server is None:
            raise RpcError("not_found", SERVER_NOT_FOUND)
        return {"ok": True}
