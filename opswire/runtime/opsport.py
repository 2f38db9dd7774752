"""The ops port of every opswire process (DESIGN §10): `/health`, `/ready`, `/metrics`.

A tiny Starlette app on its own uvicorn server, inside the process's event loop, on
`OPSWIRE_METRICS_HOST:OPSWIRE_METRICS_PORT`:

- `/health`: the process answers (liveness; never looks at a dependency, so an outage
  of NATS or PostgreSQL does not get every replica restarted).
- `/ready`: the process's *own* dependencies answer (NATS; its database) — 200, or
  503 with `{"detail": ..., "checks": {...}}` saying which did not.
- `/metrics`: Prometheus text format (opswire.runtime.metrics and the process collectors).

The socket is bound when the server starts, so a port in use is a one-line start-up
error and port 0 (any free port) is known at once (`port`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

# Each check answers "ok" or a short reason ("disconnected", "unavailable", ...).
ReadyChecks = Callable[[], Awaitable[dict[str, str]]]

# A check that does not answer in this time counts as not ready (a probe must not hang).
CHECK_TIMEOUT_S = 2.0


class OpsPortError(Exception):
    """The ops port could not be opened (in use, bad address); the message is one line."""


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process's own entry point owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ops_app(checks: ReadyChecks) -> Starlette:
    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
        try:
            results = await asyncio.wait_for(checks(), CHECK_TIMEOUT_S)
        except TimeoutError:
            results = {"checks": "timeout"}
        down = sorted(name for name, result in results.items() if result != "ok")
        if down:
            return JSONResponse(
                {"detail": f"Not ready: {', '.join(down)}", "status": "not_ready", "checks": results},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "checks": results})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for the ops port, or OpsPortError in one line (in use, bad address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise OpsPortError(f"cannot open the metrics port {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class OpsServer:
    """The ops port; `start()` binds and serves in the background, `stop()` closes it."""

    def __init__(self, host: str, port: int, checks: ReadyChecks) -> None:
        self._host = host
        self._requested_port = port
        self._checks = checks
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        sock = bind(self._host, self._requested_port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            ops_app(self._checks),
            log_config=None,
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="opswire-ops-port")
        log.info(
            "ops port open (/health, /ready, /metrics)", extra={"url": f"http://{self._host}:{self.port}"}
        )

    async def stop(self) -> None:
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        await task
