"""Presence transactions lock rows in one order: two replicas applying interleaved
connect/disconnect batches (plus heartbeats and the sweeper) never deadlock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.presence import apply_heartbeat, apply_presence, sweep_stale
from opswire.contract.events import PresenceEvent
from opswire.contract.resources import ServerStatus
from opswire.contract.types import utc_now
from opswire.runtime.db import create_engine, session_factory
from opswire.runtime.rpc import RpcClient
from tests.auth.helpers import get_server, new_server, new_user

SERVERS = 30
ROUNDS = 5


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=4)
    yield session_factory(engine)
    await engine.dispose()


def events(server_ids: Sequence[uuid.UUID], status: ServerStatus, conn: str) -> list[PresenceEvent]:
    return [
        PresenceEvent(server_id=sid, status=status, connection_id=conn, gateway_id="gw-1")
        for sid in server_ids
    ]


async def test_interleaved_batches_of_two_replicas_do_not_deadlock(
    rpc: RpcClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user = await new_user(rpc)
    ids = [uuid.UUID((await new_server(rpc, user, f"s{i}"))["id"]) for i in range(SERVERS)]

    async def apply(batch: list[PresenceEvent]) -> None:
        async with sessions.begin() as session:
            await apply_presence(session, batch)

    async def heartbeat(server_ids: list[uuid.UUID]) -> None:
        async with sessions.begin() as session:
            await apply_heartbeat(session, server_ids, utc_now())

    async def sweep() -> None:
        async with sessions.begin() as session:
            await sweep_stale(session, utc_now() + timedelta(hours=1), timeout_s=1.0)

    for round_ in range(ROUNDS):
        conn = f"conn-{round_}"
        # Replica 1 sees the servers in one order, replica 2 in the opposite one: without
        # a common lock order each holds rows the other one wants next.
        await asyncio.gather(
            apply(events(ids, "online", conn)),
            apply(events(ids[::-1], "online", conn)),
            heartbeat(ids[::-1]),
            sweep(),
        )
        await asyncio.gather(
            apply(events(ids, "offline", conn)),
            apply(events(ids[::-1], "offline", conn)),
            heartbeat(ids),
        )
    await apply(events(ids[::-1], "online", "final"))
    for sid in ids:
        assert (await get_server(rpc, user, str(sid)))["status"] == "online"
