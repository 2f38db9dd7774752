"""For the REST tests: one real gateway per module, a logged-in client with stubbed services per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from tests.gateway.stubs import Api, Gateway, api_session, started_gateway


@pytest.fixture(scope="module")
async def gateway(nats_url: str, jwt_secret: str) -> AsyncIterator[Gateway]:
    async with started_gateway(nats_url, jwt_secret) as gw:
        yield gw


@pytest.fixture
async def api(gateway: Gateway, nc: NatsClient) -> AsyncIterator[Api]:
    async with api_session(gateway, nc) as session:
        yield session
