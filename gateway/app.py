"""The gateway: REST and WebSockets in front of the services, no database.

Wiring only: the lifespan connects NATS and starts the realtime side
(agent sessions, dashboard fan-out); routes live in `routes/` and `realtime/`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from gateway.access_log import AccessLogMiddleware
from gateway.body_limit import BodyLimitMiddleware
from gateway.errors import install_error_handlers
from gateway.key_throttle import FailureWindow
from gateway.realtime import AgentSocketPath, Realtime, ws_router
from gateway.routes import api_router, root_router
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from gateway.web import install_dashboard
from opswire import __version__
from opswire.contract.subjects import Subjects
from opswire.runtime.nats import connect
from opswire.runtime.opsport import OpsServer
from opswire.runtime.rpc import RpcClient
from opswire.runtime.tokens import TokenService

log = logging.getLogger(__name__)

# Swagger UI and ReDoc assets ship in the fastapi-offline wheel: /docs and /redoc work offline.
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/docs-assets"

# What a page on an allowed origin (OPSWIRE_CORS_ORIGINS) may send; tokens travel in headers, not cookies.
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_HEADERS = ["authorization", "content-type", "idempotency-key", "x-api-key"]

# One line per tag the routes use, in the order the document lists them.
OPENAPI_TAGS = [
    {"name": "health", "description": "Liveness and readiness of the gateway and the services; no token."},
    {"name": "auth", "description": "Accounts, login, token refresh and sessions."},
    {"name": "servers", "description": "The user's servers and their presence (online, last seen)."},
    {"name": "api-keys", "description": "Keys agents authenticate with; the plain key is shown once."},
    {"name": "metrics", "description": "A server's latest metrics sample and its history."},
    {"name": "logs", "description": "A server's stored log lines."},
    {"name": "commands", "description": "Run a shell command on a server's agent; the command history."},
    {"name": "docker", "description": "A server's Docker containers: list, start/stop/restart, logs."},
    {"name": "alerts", "description": "Alert thresholds on server metrics and the alerts they raised."},
    {"name": "audit", "description": "The user's own audit log of state-changing actions."},
    {"name": "notifications", "description": "Channels (Apprise URLs) alerts are sent to."},
]


def create_app(settings: GatewaySettings, *, ops_port: bool = False) -> FastAPI:
    """The gateway app; `ops_port` (the process entry point sets it) also opens
    OPSWIRE_METRICS_PORT with /health, /ready (this gateway's NATS) and /metrics."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ops = await _open_ops_port(app, settings) if ops_port else None
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
        await state.revoked.start(nc, subjects, state.rpc, settings.access_token_ttl_s)
        realtime = await Realtime.start(state)
        app.state.realtime = realtime
        log.info("gateway %s ready", state.gateway_id)
        try:
            yield
        finally:
            await realtime.stop()
            await state.revoked.stop()
            await nc.drain()
            if ops is not None:
                await ops.stop()

    app = FastAPI(
        title="opswire",
        version=__version__,
        description="Watch and operate a fleet of servers. REST API of the opswire gateway.",
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.key_failures = FailureWindow(settings.key_check_failures_per_minute)
    # The largest legitimate body is a 64 KiB command; refuse megabytes before parsing them.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Outermost: preflights are answered before anything else looks at the request.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
        )
    # Outside the body limit, so a refused body is logged with its 413 as well.
    app.add_middleware(AccessLogMiddleware)
    # Outermost of all: agent sockets skip the REST stack for their whole life.
    app.add_middleware(AgentSocketPath)
    install_error_handlers(app)
    app.include_router(root_router)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(ws_router, prefix="/api/v1")
    _install_docs(app)
    install_dashboard(app)
    return app


async def _open_ops_port(app: FastAPI, settings: GatewaySettings) -> OpsServer:
    async def checks() -> dict[str, str]:
        # This gateway's own dependency only: one service down must not take every
        # gateway out of the load balancer (the API's /ready still reports the services).
        state: GatewayState | None = getattr(app.state, "gateway", None)
        return {"nats": "ok" if state is not None and state.nc.is_connected else "disconnected"}

    ops = OpsServer(settings.metrics_host, settings.metrics_port, checks)
    await ops.start()
    return ops


def _install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc served with assets from this gateway, never a CDN."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def _root_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
