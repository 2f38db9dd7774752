"""A small scripted stand-in for the gateway's agent socket (DESIGN §2), on a real port.

It speaks the seed protocol with the contract's own frame models: `auth` first,
then `auth_success` (or the invalid-key error and close 1008). Each accepted
connection is handed to the test through `connections`; every frame received
is parsed with `parse_agent_frame` and queued in `frames` as (connection no, frame).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from opswire.contract.frames import (
    INVALID_API_KEY,
    AgentAuth,
    AgentFrame,
    AuthSuccess,
    ErrorFrame,
    Ping,
    Pong,
    encode,
    parse_agent_frame,
)

GOOD_KEY = "test-key-" + "x" * 40
SERVER_ID = "0b9f5a4e-6f7e-4c1b-9c61-3f0f0e0c2a11"


@dataclass
class Accepted:
    number: int
    ws: ServerConnection


@dataclass
class FakeGateway:
    valid_key: str = GOOD_KEY
    server_id: str = SERVER_ID
    keys_seen: list[str] = field(default_factory=list)
    connections: asyncio.Queue[Accepted] = field(default_factory=asyncio.Queue)
    frames: asyncio.Queue[tuple[int, AgentFrame]] = field(default_factory=asyncio.Queue)
    attempts: int = 0
    _server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> FakeGateway:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.attempts += 1
        number = self.attempts
        try:
            auth = parse_agent_frame(await ws.recv())
            assert isinstance(auth, AgentAuth), f"first frame was {auth.type}"
            self.keys_seen.append(auth.api_key)
            if auth.api_key != self.valid_key:
                await ws.send(encode(ErrorFrame(code="invalid_key", message=INVALID_API_KEY)))
                await ws.close(1008, INVALID_API_KEY)
                return
            await ws.send(encode(AuthSuccess(server_id=self.server_id)))
            await self.connections.put(Accepted(number, ws))
            async for raw in ws:
                frame = parse_agent_frame(raw)
                if isinstance(frame, Ping):
                    await ws.send(encode(Pong()))
                await self.frames.put((number, frame))
        except ConnectionClosed:
            pass

    async def next_connection(self, within_s: float = 5.0) -> Accepted:
        async with asyncio.timeout(within_s):
            return await self.connections.get()

    async def next_frame(self, kind: str | None = None, within_s: float = 5.0) -> tuple[int, AgentFrame]:
        """The next frame received (of type `kind`, skipping others)."""
        async with asyncio.timeout(within_s):
            while True:
                number, frame = await self.frames.get()
                if kind is None or frame.type == kind:
                    return number, frame
