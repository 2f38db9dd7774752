"""How long a dashboard socket may stay open (DESIGN §3).

No longer than its access token: at expiry it gets an error frame and close 1008,
unless the client renewed it by sending a fresh `{"type":"auth","token":…}` on the open
socket (as Centrifugo does) — same user, still allowed to see the server — which is
answered with `auth_success` again; a refused renewal gets its error frame and changes
nothing (the current token still holds until it expires). A socket whose session ends (logout, logout-all,
password change, refresh-token reuse) closes as soon as this gateway hears of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.websockets import WebSocket

from gateway.realtime.dashboard_auth import (
    SESSION_ENDED,
    TOKEN_EXPIRED,
    DashboardGrant,
    check_access,
)
from gateway.realtime.hub import Viewer
from gateway.realtime.wsio import CloseRequest, send_frame
from gateway.state import GatewayState
from opswire.contract.frames import DashboardAuth, DashboardAuthSuccess
from opswire.contract.types import utc_now


class DashboardLease:
    def __init__(self, state: GatewayState, grant: DashboardGrant, viewer: Viewer) -> None:
        self._state = state
        self._viewer = viewer
        self._timer: asyncio.TimerHandle | None = None
        self._unwatch: Callable[[], None] = lambda: None
        self.grant = grant
        self._hold(grant)

    def _hold(self, grant: DashboardGrant) -> None:
        self.release()
        self.grant = grant
        session_id = grant.claims.session_id
        if session_id is not None:
            self._unwatch = self._state.revoked.watch(session_id, lambda: self._viewer.end(SESSION_ENDED))
            if self._state.revoked.is_revoked(session_id):  # ended while access was being checked
                self._viewer.end(SESSION_ENDED)
        left_s = (grant.claims.expires_at - utc_now()).total_seconds()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, left_s), self._viewer.end, TOKEN_EXPIRED)

    async def renew(self, ws: WebSocket, frame: DashboardAuth) -> None:
        """A fresh token on the open socket extends the lease. A refused one is answered with
        its error and changes nothing: the socket lives on until the current token expires."""
        result = await check_access(
            self._state, frame.token, str(self.grant.server_id), self.grant.claims.user_id
        )
        if isinstance(result, CloseRequest):
            if result.error is not None:
                await send_frame(ws, result.error)
            return
        self._hold(result)
        await send_frame(ws, DashboardAuthSuccess(server_id=str(result.server_id)))

    def release(self) -> None:
        """Stop the expiry timer and the session watch (the socket is done)."""
        self._unwatch()
        self._unwatch = lambda: None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
