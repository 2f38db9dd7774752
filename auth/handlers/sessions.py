"""auth.refresh / logout / logout_all / password / sessions.revoked."""

from __future__ import annotations

import asyncio
import logging

from auth import store
from auth.runtime import AuthRuntime
from auth.sessions import drop_expired, end_sessions, recently_revoked, rotate
from auth.throttle import throttled
from opswire.contract import rpc as calls
from opswire.contract.resources import TokenPair, TokenRefresh
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import RpcError
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

WRONG_PASSWORD = "Current password is incorrect"
CLEANUP_INTERVAL_S = 600.0


def register(rt: AuthRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rt.on_ready
    async def start() -> None:
        await rt.start(LoopTask(lambda: clean_up(rt), "auth-sessions-cleanup"))

    @rpc_handler(broker, subjects, calls.AUTH_REFRESH)
    async def refresh(req: TokenRefresh) -> TokenPair:
        """A live session's current refresh token -> the next pair; a spent one ends the session."""
        return await rotate(rt, req.refresh_token)

    @rpc_handler(broker, subjects, calls.AUTH_LOGOUT)
    async def logout(req: calls.SessionRef) -> calls.Flags:
        """End one session of the user (unknown or already ended: nothing to do)."""
        ended = await end_sessions(rt, req.user_id, only=req.session_id)
        return {"ok": True, "ended": bool(ended)}

    @rpc_handler(broker, subjects, calls.AUTH_LOGOUT_ALL)
    async def logout_all(req: calls.ByUser) -> calls.Flags:
        """End every session of the user."""
        await end_sessions(rt, req.user_id)
        return {"ok": True}

    @rpc_handler(broker, subjects, calls.AUTH_PASSWORD)
    async def change_password(req: calls.PasswordChangeFor) -> calls.Flags:
        """Current + new password; every other session of the user ends."""
        async with rt.sessions() as session:
            user = await store.user_by_id(session, req.user_id)
        if user is None:
            raise RpcError("not_found", "User not found")
        # A stolen access token must not become a way to guess the password.
        wait = await rt.throttle.count_attempt(rt.sessions, user.email, None)
        if wait is not None:
            raise throttled(wait)
        if not await rt.passwords.verify(user.password_hash, req.current_password):
            log.warning("password change refused: wrong current password", extra={"user_id": str(user.id)})
            raise RpcError("forbidden", WRONG_PASSWORD)
        new_hash = await rt.passwords.hash(req.new_password)
        async with rt.sessions.begin() as session:
            stored = await store.user_by_id(session, req.user_id)
            if stored is None:
                raise RpcError("not_found", "User not found")
            stored.password_hash = new_hash
            await rt.throttle.succeeded(session, user.email, None)
        ended = await end_sessions(rt, req.user_id, keep=req.session_id)
        log.info("password changed", extra={"user_id": str(user.id), "sessions_ended": ended})
        return {"ok": True}

    @rpc_handler(broker, subjects, calls.AUTH_REVOKED_SESSIONS)
    async def revoked_sessions(_req: calls.NoArgs) -> list[str]:
        """For a starting gateway: sessions whose access tokens it must refuse."""
        return [str(sid) for sid in await recently_revoked(rt)]


async def clean_up(rt: AuthRuntime) -> None:
    """Every few minutes: drop expired sessions and forgotten failed-login buckets."""
    while True:
        try:
            async with rt.sessions.begin() as session:
                await drop_expired(session)
                forgotten = await rt.throttle.forget_old(session)
            log.debug("sessions cleaned up", extra={"buckets_forgotten": forgotten})
        except Exception as exc:  # database away: next round
            log.warning("sessions clean-up failed", extra={"error": exc.__class__.__name__})
        await asyncio.sleep(CLEANUP_INTERVAL_S)
