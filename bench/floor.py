"""The floor: the least a gateway can do per agent frame, to measure opswire against.

A bare ASGI app under uvicorn (uvloop, httptools, the same WebSocket
implementation as opswire), orjson and JetStream, nothing else: no framework,
no validation model, no key lookup, no database. Per agent frame: size check,
orjson parse, `type` check, JetStream `publish_async` of the raw bytes with a
`Nats-Msg-Id`. Dashboards get every message of their server's subject as
`{"type":"metrics","data":<raw>}`.

    python bench/floor.py --port 18100 --nats nats://127.0.0.1:4222

`WS /api/v1/agents/ws`: first frame `{"type":"auth","api_key":<anything>}` ->
`auth_success` with a fresh server id; `WS /api/v1/ws/metrics/{id}`: first frame
`{"type":"auth",...}` -> `auth_success`, then live samples. `GET /health`.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import orjson
import uvicorn
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STREAM = "FLOOR_METRICS"
PREFIX = "floor.metrics."
MAX_FRAME = 1024 * 1024
BAD = orjson.dumps({"type": "error", "message": "Invalid message format"}).decode()


class Floor:
    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            path: str = scope["path"]
            if path == "/api/v1/agents/ws":
                await self._agent(receive, send)
            elif path.startswith("/api/v1/ws/metrics/"):
                await self._dashboard(path.rsplit("/", 1)[1], receive, send)
        elif scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"status":"ok"}'})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                self.nc = await nats.connect(self.nats_url)
                self.js = self.nc.jetstream(publish_async_max_pending=4000)
                await self.js.add_stream(StreamConfig(name=STREAM, subjects=[PREFIX + ">"]))
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                if self.nc is not None:
                    await self.nc.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _agent(self, receive: Receive, send: Send) -> None:
        assert self.js is not None
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        try:
            first = await asyncio.wait_for(receive(), 10)
        except TimeoutError:
            await send({"type": "websocket.close", "code": 1008})
            return
        if first["type"] != "websocket.receive":
            return
        server_id = str(uuid.uuid4())
        subject = PREFIX + server_id
        await _text(
            send,
            orjson.dumps(
                {"type": "auth_success", "server_id": server_id, "message": "Connected successfully"}
            ).decode(),
        )
        while (event := await receive())["type"] == "websocket.receive":
            raw = event.get("text") or event.get("bytes") or b""
            if len(raw) > MAX_FRAME:
                await send({"type": "websocket.close", "code": 1009})
                return
            try:
                frame = orjson.loads(raw)
            except orjson.JSONDecodeError:
                await _text(send, BAD)
                continue
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "metrics":
                data = raw.encode() if isinstance(raw, str) else raw
                msg_id = f"{server_id}:{frame.get('timestamp')}"
                await self.js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
            elif kind == "ping":
                await _text(send, '{"type":"pong"}')
            else:
                await _text(send, BAD)

    async def _dashboard(self, server_id: str, receive: Receive, send: Send) -> None:
        assert self.nc is not None
        await receive()
        await send({"type": "websocket.accept"})
        if (await receive())["type"] != "websocket.receive":
            return
        await _text(send, orjson.dumps({"type": "auth_success", "server_id": server_id}).decode())

        async def forward(msg: Msg) -> None:
            await _text(send, '{"type":"metrics","data":' + msg.data.decode() + "}")

        sub = await self.nc.subscribe(PREFIX + server_id, cb=forward)
        try:
            while (await receive())["type"] == "websocket.receive":
                pass
        finally:
            await sub.unsubscribe()


async def _text(send: Send, text: str) -> None:
    await send({"type": "websocket.send", "text": text})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    uvicorn.run(
        Floor(args.nats),
        host=args.host,
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        ws_max_size=MAX_FRAME,
        ws_per_message_deflate=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
