"""Injected dependencies of the REST routes (Annotated aliases, FastAPI style)."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.state import GatewayState
from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.contract.subjects import Subjects
from opswire.runtime.publisher import Publisher
from opswire.runtime.rpc import RpcClient
from opswire.runtime.tokens import InvalidToken, TokenClaims

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False)


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(get_state)]


def get_rpc(state: State) -> RpcClient:
    return state.rpc


Rpc = Annotated[RpcClient, Depends(get_rpc)]


SESSION_ENDED = "Session ended; log in again"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def get_current_claims(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TokenClaims:
    """A valid access token of a session that has not ended, verified locally (no round trip)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("Not authenticated")
    try:
        claims = state.tokens.claims(credentials.credentials, "access")
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    if state.revoked.is_revoked(claims.session_id):
        raise _unauthorized(SESSION_ENDED)
    return claims


CurrentClaims = Annotated[TokenClaims, Depends(get_current_claims)]


def get_current_user_id(claims: CurrentClaims) -> uuid.UUID:
    """The user of a valid access token."""
    return claims.user_id


CurrentUserId = Annotated[uuid.UUID, Depends(get_current_user_id)]


def get_client_address(request: Request) -> str | None:
    """The peer's address, for throttling and logs (the gateway trusts no forwarding header)."""
    return request.client.host if request.client else None


ClientAddress = Annotated[str | None, Depends(get_client_address)]


async def get_owned_server_id(server_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc) -> uuid.UUID:
    """The path's server_id, once auth confirms the user owns it (404 otherwise)."""
    await rpc.call_typed(calls.AUTH_AUTHORIZE, calls.ByUserServer(user_id=user_id, server_id=server_id))
    return server_id


OwnedServerId = Annotated[uuid.UUID, Depends(get_owned_server_id)]


class AuditLog:
    """Records a user's state-changing action on `opswire.audit.<user_id>` (JetStream),
    through the gateway's reliable publisher: retried until stored, stored once."""

    def __init__(self, publisher: Publisher, subjects: Subjects) -> None:
        self._publisher = publisher
        self._subjects = subjects

    async def record(
        self,
        user_id: uuid.UUID,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        event = AuditEvent(user_id=user_id, action=action, target=target, detail=detail)
        subject = self._subjects.audit(str(user_id))
        if not self._publisher.submit(subject, event.model_dump_json().encode(), str(event.id), force=True):
            # Only while shutting down; the action itself succeeded.
            log.error("audit event not stored", extra={"user_id": str(user_id), "action": action})


def get_audit(request: Request, state: State) -> AuditLog:
    return AuditLog(request.app.state.realtime.publisher, state.subjects)


Audit = Annotated[AuditLog, Depends(get_audit)]
