"""Login sessions: open, rotate, end (DESIGN §9 'Auth', OAuth 2.0 security BCP).

Every refresh rotates the session's generation; a refresh token of an older generation
is a stolen or replayed one, and ends the whole session. Ended sessions are announced
on `opswire.sessions.revoked`, because gateways verify access tokens locally.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.models import LoginSession
from auth.runtime import AuthRuntime
from opswire.contract.events import MAX_REVOKED_PER_NOTICE, SessionsRevoked
from opswire.contract.resources import TokenPair
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcError
from opswire.runtime.tokens import InvalidToken

log = logging.getLogger(__name__)

SESSION_ENDED = "Session ended; log in again"
INVALID_TOKEN = "Invalid or expired token"
# Gateways ask for recently ended sessions at start-up; more than this many is not kept.
MAX_RECENT_REVOKED = 10_000


async def open_session(rt: AuthRuntime, session: AsyncSession, user_id: uuid.UUID) -> TokenPair:
    now = utc_now()
    login = LoginSession(
        user_id=user_id,
        created_at=now,
        refreshed_at=now,
        expires_at=now + timedelta(seconds=rt.settings.refresh_token_ttl_s),
    )
    session.add(login)
    return rt.tokens.issue_pair(user_id, login.id, login.generation, refresh_until=login.expires_at)


async def rotate(rt: AuthRuntime, refresh_token: str) -> TokenPair:
    """The next pair of the token's session; a spent token ends the session."""
    try:
        claims = rt.tokens.claims(refresh_token, "refresh")
    except InvalidToken as exc:
        raise RpcError("unauthorized", str(exc)) from None
    if claims.session_id is None:  # issued before sessions existed
        raise RpcError("unauthorized", INVALID_TOKEN)
    now = utc_now()
    async with rt.sessions.begin() as session:
        login = (
            await session.execute(
                select(LoginSession)
                .where(col(LoginSession.id) == claims.session_id, col(LoginSession.user_id) == claims.user_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if login is None or login.revoked_at is not None or login.expires_at <= now:
            raise RpcError("unauthorized", INVALID_TOKEN)
        if claims.generation != login.generation:
            login.revoked_at = now
            reused = True
        else:
            login.generation += 1
            login.refreshed_at = now
            reused = False
    if reused:
        log.warning(
            "refresh token reused; session ended",
            extra={"user_id": str(claims.user_id), "session_id": str(login.id)},
        )
        await announce(rt, [login.id])
        raise RpcError("unauthorized", SESSION_ENDED)
    return rt.tokens.issue_pair(login.user_id, login.id, login.generation, refresh_until=login.expires_at)


async def end_sessions(
    rt: AuthRuntime,
    user_id: uuid.UUID,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End the user's live sessions (just `only`, or all but `keep`); announce them; how many."""
    now = utc_now()
    query = update(LoginSession).where(
        col(LoginSession.user_id) == user_id, col(LoginSession.revoked_at).is_(None)
    )
    if only is not None:
        query = query.where(col(LoginSession.id) == only)
    if keep is not None:
        query = query.where(col(LoginSession.id) != keep)
    async with rt.sessions.begin() as session:
        result = await session.execute(
            query.values(revoked_at=now).returning(col(LoginSession.id), col(LoginSession.refreshed_at))
        )
        ended = list(result.all())
    # Only sessions refreshed within an access token's lifetime can have a valid access token.
    live_since = now - timedelta(seconds=rt.settings.access_token_ttl_s)
    await announce(rt, [sid for sid, refreshed in ended if refreshed >= live_since])
    return len(ended)


async def announce(rt: AuthRuntime, session_ids: Sequence[uuid.UUID]) -> None:
    """Tell every gateway (core NATS: a gateway that is down asks at start-up instead)."""
    until = utc_now() + timedelta(seconds=rt.settings.access_token_ttl_s)
    for start in range(0, len(session_ids), MAX_REVOKED_PER_NOTICE):
        chunk = list(session_ids[start : start + MAX_REVOKED_PER_NOTICE])
        await rt.publish_core(SessionsRevoked(session_ids=chunk, until=until), rt.subjects.sessions_revoked())


async def recently_revoked(rt: AuthRuntime) -> list[uuid.UUID]:
    """Sessions ended within an access token's lifetime, newest first."""
    since: datetime = utc_now() - timedelta(seconds=rt.settings.access_token_ttl_s)
    async with rt.sessions() as session:
        result = await session.execute(
            select(col(LoginSession.id))
            .where(col(LoginSession.revoked_at) >= since)
            .order_by(col(LoginSession.revoked_at).desc())
            .limit(MAX_RECENT_REVOKED)
        )
        return list(result.scalars())


async def drop_expired(session: AsyncSession) -> None:
    """Sessions past their absolute end are of no use to anyone."""
    await session.execute(delete(LoginSession).where(col(LoginSession.expires_at) < utc_now()))
