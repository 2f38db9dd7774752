"""`/api-keys`: keys agents authenticate with. The plain key is shown once, at creation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from pydantic import ValidationError

from gateway.deps import Audit, CurrentUserId, Rpc
from gateway.errors import BEARER, NOT_FOUND, error
from gateway.key_throttle import FailureWindow
from opswire.contract import rpc as calls
from opswire.contract.frames import INVALID_API_KEY
from opswire.contract.resources import ApiKeyCreate, ApiKeyCreated, ApiKeyIdentity, ApiKeyPublic
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

TOO_MANY_REJECTED = "Too many rejected API keys from this address; try again later"

# Bearer for all but /me, which declares its own 401 (X-API-Key).
router = APIRouter(prefix="/api-keys", tags=["api-keys"], responses=BEARER)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 409: error("The per-user limit of active keys is reached")},
)
async def create_key(body: ApiKeyCreate, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> ApiKeyCreated:
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


@router.get("", responses=NOT_FOUND)
async def list_keys(
    user_id: CurrentUserId,
    rpc: Rpc,
    server_id: Annotated[uuid.UUID | None, Query(description="Only this server's keys.")] = None,
) -> list[ApiKeyPublic]:
    """The user's keys (without the key itself); another user's server is 404, like every denial."""
    if server_id is not None:
        await rpc.call_typed(calls.AUTH_AUTHORIZE, calls.ByUserServer(user_id=user_id, server_id=server_id))
    return await rpc.call_typed(calls.KEYS_LIST, calls.ApiKeyList(user_id=user_id, server_id=server_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_key(key_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> Response:
    """Revoke a key; an agent connected with it is disconnected."""
    await rpc.call_typed(calls.KEYS_REVOKE, calls.ApiKeyRevoke(user_id=user_id, key_id=key_id))
    await audit.record(user_id, "api_key.revoke", f"api_key:{key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    responses={
        401: error("Missing, unknown, inactive or revoked key (WWW-Authenticate: X-API-Key)"),
        429: error("Too many rejected keys from this address (Retry-After)"),
    },
)
async def key_identity(
    request: Request,
    rpc: Rpc,
    x_api_key: Annotated[str | None, Header(description="The agent's API key.")] = None,
) -> ApiKeyIdentity:
    """The presented key's server (ChatOps agents learn their server id here, docs/chatops-agents.md).

    Checked by the same `auth.verify_key` call as an agent socket's `auth` frame.
    """
    client = request.client.host if request.client else "unknown"
    failures: FailureWindow = request.app.state.key_failures
    wait_s = failures.retry_after(client)
    if wait_s is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, TOO_MANY_REJECTED, headers={"Retry-After": str(wait_s)}
        )
    try:
        check = calls.VerifyKey(api_key=x_api_key or "", client=client)
    except ValidationError:
        raise _rejected(failures, client, "missing or malformed") from None
    try:
        identity = await rpc.call_typed(calls.AUTH_VERIFY_KEY, check)
    except RpcError as exc:
        if exc.code != "unauthorized":
            raise
        raise _rejected(failures, client, "unknown or inactive") from None
    # Only ChatOps agents ask this: their socket is spoken to in their dialect from the start.
    realtime = getattr(request.app.state, "realtime", None)
    if realtime is not None:
        realtime.agent_context.bootstrapped.note(identity.key_id, asyncio.get_running_loop().time())
    return ApiKeyIdentity(
        server_id=identity.server_id,
        key_id=identity.key_id,
        name=identity.key_name or "",
        is_active=True,
    )


def _rejected(failures: FailureWindow, client: str, why: str) -> HTTPException:
    failures.failed(client)
    # Logged with where it came from, never with the key.
    log.warning("api key rejected", extra={"client": client, "why": why, "route": "api-keys/me"})
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, INVALID_API_KEY, headers={"WWW-Authenticate": "X-API-Key"}
    )
