from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import SecretStr

from commands.app import create_app
from commands.settings import CommandsSettings
from opswire.contract.rpc import COMMANDS_PING
from opswire.contract.subjects import Subjects
from opswire.runtime.nats import stream_configs
from opswire.runtime.rpc import RpcClient, RpcError
from tests.helpers.backends import Namespace, role_env

GRACE_S = 0.3
DELIVERY_TIMEOUT_S = 0.5
AUDIT_TIMEOUT_S = 0.5


@contextlib.asynccontextmanager
async def running_commands(settings: CommandsSettings, nc: NatsClient) -> AsyncIterator[None]:
    """The service, started in-process and answering its readiness probe."""
    app = create_app(settings)
    await app.start()
    try:
        await wait_until_ready(RpcClient(nc, Subjects(settings.subject_prefix, settings.stream_prefix)))
        yield
    finally:
        await app.stop()


async def wait_until_ready(rpc: RpcClient, within_s: float = 5.0) -> None:
    # A subscription can be invisible to other connections for ~1 ms after its
    # flush (nats-server 2.15), so the first probe may see no responders.
    deadline = time.monotonic() + within_s
    while True:
        try:
            await rpc.call(COMMANDS_PING, {}, timeout_s=1.0)
            return
        except RpcError as exc:
            if exc.code != "unavailable" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


@pytest.fixture
def commands_settings(nats_url: str, database_url: str, namespace: Namespace) -> CommandsSettings:
    # The service's own NATS identity, so the permission table is exercised too.
    identity = role_env(nats_url, "commands")
    return CommandsSettings(
        nats_url=identity["NATS_URL"],
        nats_user=identity.get("OPSWIRE_NATS_USER"),
        nats_password=SecretStr(password) if (password := identity.get("OPSWIRE_NATS_PASSWORD")) else None,
        database_url=database_url,
        subject_prefix=namespace.prefix,
        stream_prefix=namespace.stream_prefix,
        command_grace_s=GRACE_S,
        delivery_timeout_s=DELIVERY_TIMEOUT_S,
        audit_timeout_s=AUDIT_TIMEOUT_S,
    )


@pytest.fixture
async def streams(nc: NatsClient, namespace: Namespace) -> AsyncIterator[None]:
    """The namespace's JetStream streams (their owners are other services)."""
    js = nc.jetstream()
    configs = stream_configs(namespace.subjects)
    for config in configs:
        await js.add_stream(config)
    yield
    for config in configs:
        with contextlib.suppress(Exception):  # a test may have deleted it already
            await js.delete_stream(str(config.name))


@pytest.fixture
async def rpc(
    commands_settings: CommandsSettings, nc: NatsClient, namespace: Namespace, streams: None
) -> AsyncIterator[RpcClient]:
    async with running_commands(commands_settings, nc):
        yield RpcClient(nc, namespace.subjects, timeout_s=5.0)


@pytest.fixture
def server_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
async def results(
    nc: NatsClient, namespace: Namespace, server_id: uuid.UUID
) -> AsyncIterator[asyncio.Queue[Msg]]:
    """Every message published on the server's command-results subject."""
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        queue.put_nowait(msg)

    sub = await nc.subscribe(namespace.subjects.command_results(str(server_id)), cb=collect)
    await nc.flush()
    yield queue
    await sub.unsubscribe()
