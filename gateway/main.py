"""`opswire gateway`: run one gateway process."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.nats import NatsUnreachable, connect
from opswire.runtime.settings import load_settings


async def _check_nats(settings: GatewaySettings) -> None:
    nc = await connect(settings, "gateway", name="opswire-gateway-check")
    await nc.close()


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level)
    # Before uvicorn: a refused identity or an absent NATS is one clear line, not a traceback.
    try:
        asyncio.run(_check_nats(settings))
    except NatsUnreachable as exc:
        sys.exit(f"opswire gateway: {exc}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        # Chosen explicitly (pinned in pyproject), not left to whatever happens to be installed.
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        proxy_headers=False,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
