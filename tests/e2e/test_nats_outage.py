"""NATS goes away for a while: everything reconnects by itself and no accepted sample is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers.backends import Namespace, SecuredNats, create_database, drop_database
from tests.helpers.client import Api, Socket, eventually, metrics_frame
from tests.helpers.stack import Stack, running_stack


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[SecuredNats]:
    server = SecuredNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def stack_on_own_nats(
    own_nats: SecuredNats, postgres_admin_url: str, jwt_secret: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    database_url = await create_database(postgres_admin_url)
    try:
        async with running_stack(
            own_nats.admin_url, database_url, Namespace.new(), jwt_secret, tmp_path
        ) as stack:
            yield stack
    finally:
        await drop_database(postgres_admin_url, database_url)


async def test_samples_accepted_while_nats_is_down_are_stored_once_it_is_back(
    own_nats: SecuredNats, stack_on_own_nats: Stack
) -> None:
    stack = stack_on_own_nats
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        api = await Api.new_user(http)
        server_id, key = await api.new_server_with_key()
        agent = await Socket.agent(stack.ws_url, key)
        start = datetime.now(UTC) - timedelta(minutes=2)
        sent = 0

        async def send(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                await agent.send(metrics_frame(timestamp=(start + timedelta(milliseconds=sent)).isoformat()))
                sent += 1
                await asyncio.sleep(0.01)

        await send(20)
        await asyncio.to_thread(own_nats.stop)
        await send(100)  # accepted by the gateway while NATS is down
        await asyncio.to_thread(own_nats.start)
        await send(20)
        await agent.send({"type": "ping"})
        refused = 0
        while (frame := await agent.recv(timeout_s=30))["type"] != "pong":
            refused += frame["type"] == "error"
        assert refused == 0

        async def all_stored() -> list[dict[str, object]] | None:
            with contextlib.suppress(httpx.HTTPError):
                reply = await api.get(
                    f"/metrics/{server_id}/history", params={"start": start.isoformat(), "limit": 10000}
                )
                if reply.status_code == 200 and len(reply.json()) >= sent:
                    return list(reply.json())
            return None

        stored = await eventually(all_stored, timeout_s=60, interval_s=0.5)
        assert len(stored) == sent == 140
        await agent.close()
