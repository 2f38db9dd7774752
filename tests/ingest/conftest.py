from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from ingest.settings import IngestSettings
from opswire.runtime.nats import ensure_streams
from opswire.runtime.rpc import RpcClient
from tests.helpers.backends import Namespace
from tests.ingest.support import Telemetry, running_ingest


@pytest.fixture
def ingest_settings(nats_url: str, database_url: str, namespace: Namespace) -> IngestSettings:
    return IngestSettings.model_validate(
        {
            "nats_url": nats_url,
            "database_url": database_url,
            "subject_prefix": namespace.prefix,
            "stream_prefix": namespace.stream_prefix,
            "batch_timeout_s": 0.1,
            "ack_wait_s": 2.0,
            "retry_delay_s": 0.5,
        }
    )


@pytest.fixture
async def ingest(ingest_settings: IngestSettings) -> AsyncIterator[None]:
    async with running_ingest(ingest_settings):
        yield


@pytest.fixture
async def telemetry(nc: NatsClient, namespace: Namespace, database_url: str) -> Telemetry:
    await ensure_streams(nc.jetstream(), namespace.subjects)
    return Telemetry(nc, namespace.subjects, database_url)


@pytest.fixture
def rpc(nc: NatsClient, namespace: Namespace) -> RpcClient:
    return RpcClient(nc, namespace.subjects, timeout_s=5.0)
