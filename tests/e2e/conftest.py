from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.backends import Namespace, create_database, drop_database
from tests.helpers.stack import Stack, running_stack


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
    database_url = await create_database(postgres_admin_url)
    log_dir: Path = tmp_path_factory.mktemp("stack")
    try:
        async with running_stack(
            nats_url, database_url, Namespace.new(), jwt_secret, log_dir, **env
        ) as running:
            yield running
    finally:
        await drop_database(postgres_admin_url, database_url)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        yield client
