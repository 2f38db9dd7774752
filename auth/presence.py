"""Agent presence (DESIGN §9 'Presence'): online/offline and last seen, kept from three sources.

- `connected`/`disconnected` events (JetStream, in stream order);
- each gateway's heartbeat listing the agents it holds (core NATS);
- a sweeper marking servers offline whose last sign of life is too old (a gateway died).

Lock order: several transactions update the same rows at once (two replicas applying
interleaved batches, heartbeats, the sweeper). Each first locks its rows in server-id
order (`_lock_in_order`), so two of them can wait for each other but never deadlock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.models import Server
from opswire.contract.events import PresenceEvent
from opswire.contract.types import utc_now
from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

_id = col(Server.id)
_status = col(Server.status)
_conn = col(Server.current_connection_id)
_last_seen = col(Server.last_seen)


async def _lock_in_order(session: AsyncSession, *where: ColumnElement[bool]) -> list[uuid.UUID]:
    """Lock the matching rows in id order (see the module docstring); returns their ids."""
    result = await session.execute(select(_id).where(*where).order_by(_id).with_for_update())
    return list(result.scalars())


async def apply_presence(session: AsyncSession, events: Sequence[PresenceEvent]) -> None:
    """Apply events in order; unknown servers are ignored (their UPDATE matches nothing)."""
    if not events:
        return
    await _lock_in_order(session, _id.in_({event.server_id for event in events}))
    for event in events:
        if event.status == "online":
            stmt = (
                update(Server)
                .where(_id == event.server_id)
                .values(
                    status="online",
                    last_seen=event.timestamp,
                    current_connection_id=event.connection_id,
                )
            )
        else:
            # A replaced connection's late disconnect must not mark the newer one offline.
            stmt = (
                update(Server)
                .where(_id == event.server_id, _conn == event.connection_id)
                .values(status="offline", last_seen=event.timestamp, current_connection_id=None)
            )
        await session.execute(stmt)


async def apply_heartbeat(session: AsyncSession, server_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """The gateway holds these agents right now: they were seen now.

    Online servers get a fresh `last_seen`. A server the sweeper marked offline while
    its connection was never reported closed (it still has a `current_connection_id`)
    comes back online: its gateway was slow, not dead. One that disconnected cleanly
    (connection id cleared) is left offline — a heartbeat sent before the disconnect
    must not revive it.
    """
    if not server_ids:
        return
    seen = await _lock_in_order(
        session, _id.in_(set(server_ids)), or_(_status == "online", _conn.is_not(None))
    )
    if seen:
        await session.execute(update(Server).where(_id.in_(seen)).values(status="online", last_seen=now))


async def sweep_stale(session: AsyncSession, now: datetime, timeout_s: float) -> list[uuid.UUID]:
    """Mark online servers not seen for `timeout_s` offline; returns their ids."""
    cutoff = now - timedelta(seconds=timeout_s)
    stale = await _lock_in_order(session, _status == "online", or_(_last_seen.is_(None), _last_seen < cutoff))
    if stale:
        await session.execute(update(Server).where(_id.in_(stale)).values(status="offline"))
    return stale


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession], timeout_s: float, interval_s: float
) -> None:
    """Every `interval_s`, mark stale online servers offline. Runs until cancelled."""
    outage = OutageLog(log, "presence sweep failed")
    while True:
        try:
            async with sessions.begin() as session:
                stale = await sweep_stale(session, utc_now(), timeout_s)
        except Exception as exc:
            # The database may be briefly away; the next round tries again.
            outage.failed(exc)
        else:
            outage.recovered()
            for server_id in stale:
                log.info("server offline: not seen in time", extra={"server_id": str(server_id)})
        await asyncio.sleep(interval_s)
