"""A ChatOps agent (martian56/chatops `agent/`) as it behaves on the wire, for tests.

What it does, in its order: `GET /api/v1/api-keys/me` with `X-API-Key` for its
server id (before every connect), `{"type":"auth"}` and nothing but
`auth_success` will do, then one `metrics` frame per sample, each waiting up
to 5 s for `metrics_received`; without it the agent drops the TCP connection
(no close frame) and starts over. Commands are handled one at a time and
answered with the command's `request_id`.

Frames are encoded as Go's encoding/json writes them through gorilla's
`WriteJSON`: map keys sorted, struct fields in declaration order, `<>&`
escaped, whole floats without a fraction, a trailing newline, and sent in
4 KiB fragments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

GIB = 1024**3
FRAGMENT_BYTES = 4096
ACK_WAIT_S = 5.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class AgentExit(Exception):
    """Where the real agent gives up and exits (bootstrap refused, authentication refused)."""


def go_json(value: Any) -> str:
    """`value` encoded as Go's encoding/json would (dicts keep the order they were built in)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, int):
        return str(value)
    return _go_string(str(value))


def _go_string(text: str) -> str:
    escaped = json.dumps(text, ensure_ascii=False)
    for char, code in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        escaped = escaped.replace(char, code)
    return escaped


def go_map(**fields: Any) -> dict[str, Any]:
    """A Go `map[string]interface{}`: encoding/json writes its keys sorted."""
    return dict(sorted(fields.items()))


def rfc3339(moment: datetime) -> str:
    """Go's `time.RFC3339`: whole seconds, `Z` for UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_data(
    server_id: str,
    moment: datetime,
    cpu: float = 23.5,
    memory: float = 61.25,
    processes: int = 300,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One collector sample (`api.Metrics` fields, in struct order, inside the `data` map)."""
    procs = [
        {
            "pid": 1000 + i,
            "name": "<defunct>" if i == 7 else f"worker-{i:03d}",
            "cpu": round(0.1 * (i % 17), 1),
            "memory": 12.5 + i,
            "status": "S",
            "user": "www-data",
        }
        for i in range(processes)
    ]
    return go_map(
        server_id=server_id,
        timestamp=rfc3339(moment),
        cpu={"usage_percent": cpu, "cores": 4, "frequency_mhz": 2400.0},
        memory={"total_gb": 16.0, "used_gb": 9.8, "available_gb": 6.2, "usage_percent": memory},
        disk={"total_gb": 100.0, "used_gb": 42.5, "available_gb": 57.5, "usage_percent": 42.5},
        network={
            "bytes_sent": 123_456_789,
            "bytes_recv": 987_654_321,
            "packets_sent": 1_000,
            "packets_recv": 2_000,
        },
        containers=containers,  # nil when Docker is unavailable: `null`
        processes=procs,
    )


class ChatOpsAgent:
    """One agent process: reconnects as the real one does; `reconnects` counts how often."""

    def __init__(
        self, base_url: str, api_key: str, handler: Handler | None = None, ack_wait_s: float = ACK_WAIT_S
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.handler = handler
        self.ack_wait_s = ack_wait_s
        self.server_id = ""
        self.reconnects = 0
        self.bootstraps = 0
        self.received: list[dict[str, Any]] = []  # every frame that is not an ack
        self.sent_replies: list[dict[str, Any]] = []
        self.fragments: list[int] = []  # per message written, how many WebSocket frames
        self._ws: ClientConnection | None = None
        self._acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/api/v1/agents/ws"

    async def bootstrap(self) -> str:
        """Its `fetchServerID`: anything but 200 ends the agent."""
        self.bootstraps += 1
        async with httpx.AsyncClient(timeout=30) as http:
            reply = await http.get(f"{self.base_url}/api/v1/api-keys/me", headers={"X-API-Key": self.api_key})
        if reply.status_code != 200:
            raise AgentExit(f"failed to fetch server ID: API error: {reply.status_code} - {reply.text}")
        server_id: str = reply.json()["server_id"]
        return server_id

    async def start(self) -> None:
        """`NewWSClient` + `Connect`: bootstrap, open, authenticate, start reading."""
        self.server_id = await self.bootstrap()
        ws = await websockets.connect(self.ws_url, compression=None, max_size=None)
        await self.write(go_map(type="auth", api_key=self.api_key), ws)
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply.get("type") != "auth_success":
            await ws.close()
            raise AgentExit(f"authentication failed: {reply}")
        self._ws = ws
        self._acks = asyncio.Queue(maxsize=1)
        self._tasks = [asyncio.create_task(self._read(ws)), asyncio.create_task(self._handle())]

    async def stop(self) -> None:
        """What `Close` does: the TCP connection goes, without a close frame."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._ws is not None:
            self._ws.transport.abort()
            self._ws = None

    async def write(self, frame: dict[str, Any], ws: ClientConnection | None = None) -> None:
        """gorilla `WriteJSON`: one text message, fragmented at 4 KiB, newline-terminated."""
        text = go_json(frame) + "\n"
        assert text.isascii(), "fragments are cut by characters here, so keep frames ASCII"
        chunks = [text[i : i + FRAGMENT_BYTES] for i in range(0, len(text), FRAGMENT_BYTES)]
        target = ws or self._ws
        assert target is not None, "not connected"
        self.fragments.append(len(chunks))
        await target.send(chunks if len(chunks) > 1 else text)

    async def send_metrics(self, data: dict[str, Any]) -> bool:
        """One tick of its loop: send, wait for the ack; without one, reconnect. True if acked."""
        with contextlib.suppress(asyncio.QueueEmpty):
            self._acks.get_nowait()  # a late ack of an earlier sample, as its channel would hold
        await self.write(go_map(type="metrics", data=data))
        try:
            ack = await asyncio.wait_for(self._acks.get(), self.ack_wait_s)
        except TimeoutError:
            self.reconnects += 1
            await self.stop()
            await self.start()
            return False
        return bool(ack.get("type") == "metrics_received")

    async def next_message(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next frame that is neither an ack nor handled (with no handler: every one)."""
        return await asyncio.wait_for(self._messages.get(), timeout_s)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                message: dict[str, Any] = orjson.loads(raw)
                if message.get("type") == "metrics_received":
                    with contextlib.suppress(asyncio.QueueFull):
                        self._acks.put_nowait(message)
                    continue
                self.received.append(message)
                await self._messages.put(message)

    async def _handle(self) -> None:
        """`handleMessages`: one at a time, the reply carrying the request's `request_id`."""
        if self.handler is None:
            return
        while True:
            message = await self._messages.get()
            reply = await self.handler(message)
            if reply is None:
                continue
            if "request_id" in message:
                reply = go_map(**reply, request_id=message["request_id"])
            self.sent_replies.append(reply)
            await self.write(reply)


class FakeHost:
    """What the agent's handlers do on a host with containers `web` and `db`."""

    # `api.DockerContainer` structs: fields in declaration order, `public_port` omitted if nil.
    CONTAINERS: ClassVar[list[dict[str, Any]]] = [
        {
            "id": "3f2a9c1b7d4e",
            "name": "web",
            "image": "nginx:1.27",
            "status": "Up 2 hours",
            "state": "running",
            "created": "2026-12-01T18:00:00Z",
            "ports": [{"private_port": 80, "public_port": 8080, "type": "tcp"}],
        },
        {
            "id": "9e8d7c6b5a41",
            "name": "db",
            "image": "postgres:16",
            "status": "Exited (0) 1 hour ago",
            "state": "exited",
            "created": "2026-12-01T17:00:00Z",
            "ports": [{"private_port": 5432, "type": "tcp"}],
        },
    ]
    ACTIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "start_container": ("container_started", "started"),
        "stop_container": ("container_stopped", "stopped"),
        "restart_container": ("container_restarted", "restarted"),
    }

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> dict[str, Any] | None:
        self.requests.append(message)
        kind = message.get("type")
        if kind == "execute_command":
            return await self._execute(str(message["command"]))
        container = message.get("container_id")
        known = container in ("web", "db") or any(c["id"] == container for c in self.CONTAINERS)
        if kind in self.ACTIONS:
            reply_type, status = self.ACTIONS[kind]
            if not known:
                verb = str(kind).split("_", 1)[0]
                return go_map(
                    type="error",
                    message=f"Failed to {verb} container: Error response "
                    f"from daemon: No such container: {container}",
                )
            return go_map(type=reply_type, data=go_map(container_id=container, status=status))
        if kind == "get_container_logs":
            if not known:
                return go_map(type="error", message=f"No such container: {container}")
            lines = [f"{container} line {i}" for i in range(int(message.get("tail", 500)))]
            return go_map(type="container_logs", data=go_map(container_id=container, logs=lines))
        return None  # pong, error: logged and ignored by the agent

    @staticmethod
    async def _execute(command: str) -> dict[str, Any]:
        # `sh -c`, output and error combined, as exec.Command(...).CombinedOutput().
        process = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        return go_map(
            type="command_result", data=go_map(output=output.decode(), exit_code=process.returncode)
        )
