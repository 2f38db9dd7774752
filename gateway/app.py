"""The gateway: REST and WebSockets in front of the services, no database.

Wiring only: the lifespan connects NATS and starts the realtime side
(agent sessions, dashboard fan-out); routes live in `routes/` and `realtime/`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.body_limit import BodyLimitMiddleware
from gateway.errors import install_error_handlers
from gateway.realtime import Realtime, ws_router
from gateway.routes import api_router, root_router
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from opswire import __version__
from opswire.contract.subjects import Subjects
from opswire.runtime.nats import connect
from opswire.runtime.rpc import RpcClient
from opswire.runtime.tokens import TokenService

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        subjects = Subjects(settings.subject_prefix, settings.stream_prefix)
        # The streams are ingest's and auth's (DESIGN §4): publishes wait for them.
        nc = await connect(settings, "gateway", name="opswire-gateway")
        js = nc.jetstream()
        state = GatewayState(
            settings=settings,
            subjects=subjects,
            nc=nc,
            js=js,
            rpc=RpcClient(nc, subjects, settings.rpc_timeout_s),
            tokens=TokenService(
                settings.jwt_secret, settings.access_token_ttl_s, settings.refresh_token_ttl_s
            ),
        )
        app.state.gateway = state
        realtime = await Realtime.start(state)
        app.state.realtime = realtime
        log.info("gateway %s ready", state.gateway_id)
        try:
            yield
        finally:
            await realtime.stop()
            await nc.drain()

    app = FastAPI(
        title="opswire",
        version=__version__,
        description="Watch and operate a fleet of servers. REST API of the opswire gateway.",
        lifespan=lifespan,
    )
    # The largest legitimate body is a 64 KiB command; refuse megabytes before parsing them.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(root_router)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(ws_router, prefix="/api/v1")
    return app
