"""`opswire gateway`: run one gateway process."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.nats import NatsUnreachable, connect
from opswire.runtime.opsport import OpsPortError, bind
from opswire.runtime.settings import load_settings


async def _check_nats(settings: GatewaySettings) -> bool:
    """NATS answers and takes this identity: True; False when SIGTERM/SIGINT came first."""
    loop = asyncio.get_running_loop()
    checking = asyncio.ensure_future(connect(settings, "gateway", name="opswire-gateway-check"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, checking.cancel)
    try:
        nc = await checking
    except asyncio.CancelledError:
        return False
    await nc.close()
    return True


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format)
    # Before uvicorn: a refused identity or an absent NATS is one clear line, not a traceback.
    try:
        # Before uvicorn too, so a port in use is one line rather than a lifespan traceback.
        bind(settings.metrics_host, settings.metrics_port).close()
    except OpsPortError as exc:
        sys.exit(f"opswire gateway: {exc}")
    try:
        if not asyncio.run(_check_nats(settings)):
            return  # asked to stop while waiting for NATS: nothing started, nothing to undo
    except NatsUnreachable as exc:
        sys.exit(f"opswire gateway: {exc}")
    uvicorn.run(
        create_app(settings, ops_port=True),
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
