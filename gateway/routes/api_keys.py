"""`/api-keys`: keys agents authenticate with. The plain key is shown once, at creation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gateway.deps import Audit, CurrentUserId, Rpc
from opswire.contract import rpc as calls
from opswire.contract.resources import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(
    body: ApiKeyCreate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ApiKeyCreated:
    """Create a key for one of the user's servers; the reply's `key` is never shown again."""
    request = calls.ApiKeyCreateFor(user_id=user_id, **body.model_dump())
    key = await rpc.call_typed(calls.KEYS_CREATE, request)
    # The audit entry names the key by id and prefix only, never the key itself.
    await audit.record(
        user_id,
        "api_key.create",
        f"api_key:{key.id}",
        {"server_id": str(key.server_id), "name": key.name, "prefix": key.prefix},
    )
    return key


@router.get("")
async def list_keys(
    user_id: CurrentUserId,
    rpc: Rpc,
    server_id: Annotated[uuid.UUID | None, Query(description="Only this server's keys.")] = None,
) -> list[ApiKeyPublic]:
    """The user's keys (without the key itself); another user's server is 404, like every denial."""
    if server_id is not None:
        await rpc.call_typed(calls.AUTH_AUTHORIZE, calls.ByUserServer(user_id=user_id, server_id=server_id))
    return await rpc.call_typed(calls.KEYS_LIST, calls.ApiKeyList(user_id=user_id, server_id=server_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> Response:
    """Revoke a key; an agent connected with it is disconnected."""
    await rpc.call_typed(calls.KEYS_REVOKE, calls.ApiKeyRevoke(user_id=user_id, key_id=key_id))
    await audit.record(user_id, "api_key.revoke", f"api_key:{key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
