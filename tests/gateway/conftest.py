"""Gateways for the REST tests (one per module, stubbed services) and the WebSocket tests (one per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from tests.gateway.stubs import Api, Gateway, api_session, started_gateway
from tests.helpers.backends import Namespace
from tests.helpers.ws import Gateway as WsGateway
from tests.helpers.ws import Services
from tests.helpers.ws import gateway as ws_gateway


@pytest.fixture(scope="module")
async def gateway(nats_url: str, jwt_secret: str) -> AsyncIterator[Gateway]:
    async with started_gateway(nats_url, jwt_secret) as gw:
        yield gw


@pytest.fixture
async def api(gateway: Gateway, nc: NatsClient) -> AsyncIterator[Api]:
    async with api_session(gateway, nc) as session:
        yield session


@pytest.fixture
async def gw(nats_url: str, namespace: Namespace, jwt_secret: str) -> AsyncIterator[WsGateway]:
    """For the WebSocket tests: a gateway of this test's own namespace."""
    async with ws_gateway(nats_url, namespace, jwt_secret) as running:
        yield running


@pytest.fixture
async def services(nc: NatsClient, namespace: Namespace) -> AsyncIterator[Services]:
    """Stub services answering API-key checks (tests start more methods as they need)."""
    stub = Services(nc, namespace.subjects)
    await stub.start(calls.AUTH_VERIFY_KEY)
    yield stub
    await stub.stop()
