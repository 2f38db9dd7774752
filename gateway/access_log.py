"""The REST access log and request metrics, without secrets (DESIGN §10).

One line per HTTP request on logger `opswire.access`: method, path, status,
duration_ms, client. The query string is never logged (a client may put a token
or key in it), nor any header or body. The request metric is labelled with the
route template (`/api/v1/servers/{server_id}`), never the raw path, so ids do
not multiply the series. WebSockets are not HTTP requests here: their sessions
log their own lifecycle.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opswire.runtime import metrics

log = logging.getLogger("opswire.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.http_request(scope["method"], route, status, seconds)
            client = scope.get("client")
            log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "client": f"{client[0]}:{client[1]}" if client else "-",
                },
            )
