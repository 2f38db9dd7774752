"""Agent presence (DESIGN §9 'Presence'): online/offline and last seen, kept from three sources.

- `connected`/`disconnected` events (JetStream, in stream order);
- each gateway's heartbeat listing the agents it holds (core NATS);
- a sweeper marking servers offline whose last sign of life is too old (a gateway died).

What auth itself changes without a gateway's event (the sweeper marked a server offline,
a heartbeat found a swept server again) it tells as presence events of its own
(`gateway_id` `SWEEPER`), so other subscribers (ingest's `offline` rule) hear of it;
auth's own consumer skips them, the change being made already.

Lock order: several transactions update the same rows at once (two replicas applying
interleaved batches, heartbeats, the sweeper). Each first locks its rows in server-id
order (`_lock_in_order`), so two of them can wait for each other but never deadlock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
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

SWEEPER = "auth-sweeper"
Tell = Callable[[PresenceEvent], None]


def told(server_id: uuid.UUID, connection_id: str | None, online: bool) -> PresenceEvent:
    """The event auth publishes for a change it made itself."""
    return PresenceEvent(
        server_id=server_id,
        status="online" if online else "offline",
        connection_id=connection_id or "",
        gateway_id=SWEEPER,
        reason="seen_again" if online else "not_seen",
    )


async def _lock_in_order(session: AsyncSession, *where: ColumnElement[bool]) -> list[uuid.UUID]:
    """Lock the matching rows in id order (see the module docstring); returns their ids."""
    result = await session.execute(select(_id).where(*where).order_by(_id).with_for_update())
    return list(result.scalars())


async def apply_presence(session: AsyncSession, events: Sequence[PresenceEvent]) -> None:
    """Apply events in order; unknown servers are ignored (their UPDATE matches nothing)."""
    events = [event for event in events if event.gateway_id != SWEEPER]
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


async def apply_heartbeat(
    session: AsyncSession, server_ids: Sequence[uuid.UUID], now: datetime
) -> list[tuple[uuid.UUID, str | None]]:
    """The gateway holds these agents right now: they were seen now.

    Online servers get a fresh `last_seen`. A server the sweeper marked offline while
    its connection was never reported closed (it still has a `current_connection_id`)
    comes back online: its gateway was slow, not dead. One that disconnected cleanly
    (connection id cleared) is left offline — a heartbeat sent before the disconnect
    must not revive it.

    Returns the servers revived (id, connection id).
    """
    if not server_ids:
        return []
    seen = await _lock_in_order(
        session, _id.in_(set(server_ids)), or_(_status == "online", _conn.is_not(None))
    )
    if not seen:
        return []
    revived = await session.execute(
        select(_id, _conn).where(_id.in_(seen), _status == "offline").order_by(_id)
    )
    back = [(row[0], row[1]) for row in revived]
    await session.execute(update(Server).where(_id.in_(seen)).values(status="online", last_seen=now))
    return back


async def sweep_stale(
    session: AsyncSession, now: datetime, timeout_s: float
) -> list[tuple[uuid.UUID, str | None]]:
    """Mark online servers not seen for `timeout_s` offline; returns them (id, connection id).

    The connection id stays: a heartbeat from a gateway that was slow, not dead, revives it.
    """
    cutoff = now - timedelta(seconds=timeout_s)
    stale = await _lock_in_order(session, _status == "online", or_(_last_seen.is_(None), _last_seen < cutoff))
    if not stale:
        return []
    rows = await session.execute(select(_id, _conn).where(_id.in_(stale)).order_by(_id))
    await session.execute(update(Server).where(_id.in_(stale)).values(status="offline"))
    return [(row[0], row[1]) for row in rows]


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession], timeout_s: float, interval_s: float, tell: Tell
) -> None:
    """Every `interval_s`, mark stale online servers offline (and tell). Runs until cancelled."""
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
            for server_id, connection_id in stale:
                log.info("server offline: not seen in time", extra={"server_id": str(server_id)})
                tell(told(server_id, connection_id, online=False))
        await asyncio.sleep(interval_s)
