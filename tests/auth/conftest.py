from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from nats.aio.client import Client as NatsClient

from auth.app import create_app
from auth.settings import AuthSettings
from opswire.runtime.rpc import RpcClient
from tests.helpers.backends import Namespace

RunAuth = Callable[..., AbstractAsyncContextManager[RpcClient]]


@pytest.fixture
def run_auth(
    nats_url: str, database_url: str, namespace: Namespace, jwt_secret: str, nc: NatsClient
) -> RunAuth:
    """`async with run_auth(**overrides) as rpc:` — the auth service running in this loop."""

    @asynccontextmanager
    async def running(**overrides: object) -> AsyncIterator[RpcClient]:
        values: dict[str, object] = {
            "nats_url": nats_url,
            "database_url": database_url,
            "subject_prefix": namespace.prefix,
            "stream_prefix": namespace.stream_prefix,
            "jwt_secret": jwt_secret,
        }
        values.update(overrides)
        app = create_app(AuthSettings.model_validate(values))
        await app.start()
        try:
            yield RpcClient(nc, namespace.subjects, timeout_s=5.0)
        finally:
            await app.stop()

    return running


@pytest.fixture
async def rpc(run_auth: RunAuth) -> AsyncIterator[RpcClient]:
    async with run_auth() as client:
        yield client
