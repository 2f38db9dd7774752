"""Run a real gateway (uvicorn, real sockets) inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import free_port
from opswire.runtime.nats import ensure_streams
from tests.helpers.backends import Namespace


def gateway_settings(
    nats_url: str, namespace: Namespace, jwt_secret: str, **overrides: object
) -> GatewaySettings:
    values: dict[str, object] = {
        "nats_url": nats_url,
        "subject_prefix": namespace.prefix,
        "stream_prefix": namespace.stream_prefix,
        "jwt_secret": jwt_secret,
        "host": "127.0.0.1",
        "port": free_port(),
    }
    values.update(overrides)
    return GatewaySettings.model_validate(values)


@asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) of a started gateway."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        lifespan="on",
    )
    # In production ingest and auth own the streams; a gateway alone needs them made.
    nc = await nats.connect(settings.nats_url)
    try:
        await ensure_streams(nc.jetstream(), Subjects(settings.subject_prefix, settings.stream_prefix))
    finally:
        await nc.close()
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("gateway exited during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        server.should_exit = True
        await task
