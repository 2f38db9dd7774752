from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers.stack import Stack, stack_with_database


@pytest.fixture(scope="module")
async def stack(
    request: pytest.FixtureRequest,
    nats_url: str,
    postgres_admin_url: str,
    jwt_secret: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The four services as real processes, shared by the tests of one module.

    A module may set `STACK_ENV = {...}` to give its stack other settings.
    """
    env = {"OPSWIRE_AGENT_IDLE_TIMEOUT_S": "30", **getattr(request.module, "STACK_ENV", {})}
    log_dir = tmp_path_factory.mktemp("stack")
    async with stack_with_database(nats_url, postgres_admin_url, jwt_secret, log_dir, **env) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client
