"""A notification receiver for tests: a minimal HTTP server on 127.0.0.1 that Apprise's
`json://127.0.0.1:PORT/hook` posts to; each notification lands in a queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from opswire.launcher.embedded import free_port


class Receiver:
    """A minimal HTTP server on 127.0.0.1: every POST body (JSON) lands in `received`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await self.received.put(orjson.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def next(self, timeout_s: float = 15.0) -> tuple[str, dict[str, Any]]:
        """The next notification: (title, our JSON body, which Apprise sends as `message`)."""
        posted = await asyncio.wait_for(self.received.get(), timeout_s)
        return str(posted["title"]), orjson.loads(posted["message"])


@contextlib.asynccontextmanager
async def receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    running = Receiver(port or free_port())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
