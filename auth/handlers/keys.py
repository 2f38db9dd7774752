"""auth.keys.* and auth.verify_key: API keys, stored only as a SHA-256 hash."""

from __future__ import annotations

import logging
import secrets

from auth import store
from auth.handlers.servers import SERVER_NOT_FOUND
from auth.key_check import KeyChecker
from auth.models import ApiKey
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.events import AgentControl
from opswire.contract.resources import AgentIdentity, ApiKeyCreated, ApiKeyPublic
from opswire.contract.types import utc_now
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

KEY_PREFIX = "ow_"
DISPLAY_PREFIX_CHARS = 8
INVALID_KEY = "Invalid or inactive API key"
KEY_NOT_FOUND = "API key not found"
VERIFY_WORKERS = 512


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(key, from_attributes=True)


def register(rt: AuthRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.KEYS_CREATE)
    async def create_key(req: calls.ApiKeyCreateFor) -> ApiKeyCreated:
        """A new key for one of the user's servers; the plain key is in this reply only."""
        plain = new_api_key()
        key = ApiKey(
            server_id=req.server_id,
            name=req.name,
            prefix=plain[:DISPLAY_PREFIX_CHARS],
            key_hash=store.hash_api_key(plain),
        )
        limit = rt.settings.max_api_keys_per_user
        async with rt.sessions.begin() as session:
            await store.lock_user(session, req.user_id)
            if await store.owned_server(session, req.user_id, req.server_id) is None:
                raise RpcError("not_found", SERVER_NOT_FOUND)
            if await store.count_active_keys(session, req.user_id) >= limit:
                raise RpcError("conflict", f"API key limit reached ({limit} active keys per user)")
            session.add(key)
        log.info("api key created", extra={"key_id": str(key.id), "server_id": str(req.server_id)})
        return ApiKeyCreated(**public(key).model_dump(), key=plain)

    @rpc_handler(broker, subjects, calls.KEYS_LIST)
    async def list_keys(req: calls.ApiKeyList) -> list[ApiKeyPublic]:
        """The user's keys (never the key itself), newest first, optionally for one server."""
        async with rt.sessions() as session:
            return [public(k) for k in await store.list_keys(session, req.user_id, req.server_id)]

    @rpc_handler(broker, subjects, calls.KEYS_REVOKE)
    async def revoke_key(req: calls.ApiKeyRevoke) -> ApiKeyPublic:
        """Deactivate the key and close any agent connected with it."""
        async with rt.sessions.begin() as session:
            key = await store.owned_key(session, req.user_id, req.key_id)
            if key is None:
                raise RpcError("not_found", KEY_NOT_FOUND)
            if key.is_active:
                key.is_active = False
                key.revoked_at = utc_now()
        # Published even for an already revoked key: a retried revoke still closes the agent.
        await rt.publish_core(
            AgentControl(reason="revoked", key_id=key.id),
            subjects.agent_control(str(key.server_id)),
        )
        log.info("api key revoked", extra={"key_id": str(key.id), "server_id": str(key.server_id)})
        return public(key)

    checker = KeyChecker(lambda: rt.sessions)

    # Many at once: a request only waits for its batch's lookup (auth/key_check.py), so a
    # fleet connecting together does not queue behind a few workers.
    @rpc_handler(broker, subjects, calls.AUTH_VERIFY_KEY, max_workers=VERIFY_WORKERS)
    async def verify_key(req: calls.VerifyKey) -> AgentIdentity:
        """An active key of an existing server -> who it belongs to."""
        found = await checker.owner(req.api_key)
        if found is None:
            # Never the key itself; its first characters only say which kind was tried.
            log.warning("api key rejected", extra={"client": req.client, "prefix": req.api_key[:3]})
            raise RpcError("unauthorized", INVALID_KEY)
        return AgentIdentity(
            server_id=found.server_id, key_id=found.key_id, user_id=found.user_id, key_name=found.key_name
        )
