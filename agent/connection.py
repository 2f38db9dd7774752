"""The agent's one WebSocket to the gateway, kept open for as long as the agent runs.

Each session: connect, send `auth` first, wait for `auth_success`, then send
from the outbox and hand incoming frames to `dispatch` until the connection
ends. Between sessions: exponential backoff with jitter (reset after a stable
connection); a rejected key (error frame or close 1008) is retried slowly so a
revoked agent never hammers the gateway; close 4000 (replaced by a newer
connection of the same server) is logged and backed off like any loss. With several
gateway URLs each session after a loss tries the next one (round-robin), same backoff.
Heartbeats are websockets' own ping/pong, so a dead peer is noticed within
ping_interval + ping_timeout + close_timeout (10 + 10 + 5 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from agent.buffer import Outbox
from opswire.contract.frames import (
    INVALID_API_KEY,
    AgentAuth,
    AuthSuccess,
    CommandFrame,
    CommandResponse,
    DockerCommandFrame,
    DockerResponse,
    ErrorCode,
    ErrorFrame,
    FrameError,
    Ping,
    Pong,
    encode,
)

log = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008  # bad, revoked or deleted key
CLOSE_REPLACED = 4000  # a newer connection of the same server took over
# The error code of a bad, revoked or deleted key (DESIGN §2): never match words in messages.
KEY_REJECTED: ErrorCode = "invalid_key"
INVALID_FRAME_EXIT_CODE = 2

GatewayFrame = Annotated[
    AuthSuccess | CommandFrame | DockerCommandFrame | ErrorFrame | Pong,
    Field(discriminator="type"),
]
_gateway_frames: TypeAdapter[GatewayFrame] = TypeAdapter(GatewayFrame)
Dispatch = Callable[[CommandFrame | DockerCommandFrame], None]


def parse_gateway_frame(raw: str | bytes) -> GatewayFrame:
    try:
        return _gateway_frames.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FrameError(f"{where}: {first['msg']}" if where else first["msg"]) from None


class KeyRejected(Exception):
    """The gateway refused our API key (or revoked it): retry only slowly."""


class Backoff:
    """1 s doubling to a cap, with "equal jitter" (half fixed, half random)."""

    def __init__(self, initial: float, cap: float, rng: Callable[[], float] = random.random):
        self.initial, self.cap, self._rng = initial, cap, rng
        self.attempt = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return base / 2 + self._rng() * base / 2

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class ConnectionOptions:
    # The gateways' socket URLs, in failover order (at least one).
    ws_urls: tuple[str, ...]
    api_key: str
    ssl_context: ssl.SSLContext | None = None
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 10.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    max_frame_bytes: int = 1024 * 1024
    stable_after_s: float = 30.0
    rejected_retry_s: float = 60.0
    keepalive_s: float = 20.0  # a `ping` frame when nothing else was sent: gateways close idle agents

    def __repr__(self) -> str:  # never show the key
        return f"ConnectionOptions(ws_urls={self.ws_urls!r})"

    def ssl_for(self, url: str) -> ssl.SSLContext | None:
        """websockets refuses a TLS context for a ws:// URL: only wss:// gets one."""
        return self.ssl_context if url.startswith("wss://") else None


class AgentConnection:
    def __init__(
        self,
        options: ConnectionOptions,
        outbox: Outbox,
        dispatch: Dispatch,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.options, self.outbox, self.backoff = options, outbox, backoff
        self._dispatch, self._sleep = dispatch, sleep
        self.server_id: str | None = None
        self.online = asyncio.Event()
        self._next_url = 0  # index into options.ws_urls of the next session's gateway
        self._last_error: ErrorFrame | None = None  # the gateway's error frame before it closes 1008

    async def run(self) -> None:
        """Stay connected until cancelled."""
        while True:
            try:
                delay = await self._session()
            except Exception:  # a bug must not end the agent's only link: log it, back off
                log.exception("connection failed unexpectedly")
                delay = self.backoff.next()
            resent = self.outbox.requeue_recent()
            log.info("reconnecting in %.1f s", delay, extra={"delay_s": delay, "resend": resent})
            await self._sleep(delay)

    @property
    def ws_url(self) -> str:
        """The gateway the next session is for."""
        return self.options.ws_urls[self._next_url]

    async def _session(self) -> float:
        """One connection from connect to loss; returns how long to wait before the next."""
        url = self.ws_url
        # Whatever ends this session, the next one tries the next gateway.
        self._next_url = (self._next_url + 1) % len(self.options.ws_urls)
        return await self._session_with(url)

    async def _session_with(self, url: str) -> float:
        opts, started = self.options, None
        ws: ClientConnection | None = None
        self._last_error = None
        try:
            async with connect(
                url,
                ssl=opts.ssl_for(url),
                ping_interval=opts.ping_interval_s,
                ping_timeout=opts.ping_timeout_s,
                open_timeout=opts.open_timeout_s,
                close_timeout=opts.close_timeout_s,
                max_size=opts.max_frame_bytes,
                compression=None,
                user_agent_header="opswire-agent",
            ) as ws:
                self.server_id = await self._authenticate(ws)
                started = time.monotonic()
                log.info("connected to %s as server %s", url, self.server_id)
                self.online.set()
                await self._serve(ws)
        except KeyRejected as exc:
            return self._rejected(str(exc))
        except ConnectionClosed as exc:
            if exc.rcvd and exc.rcvd.code == CLOSE_POLICY_VIOLATION and self._credentials_refused():
                return self._rejected(self._last_error.message if self._last_error else exc.rcvd.reason)
        except ssl.SSLCertVerificationError as exc:
            log.error(
                "TLS certificate of %s not trusted: %s (use --ca-file, or --insecure to test)",
                url,
                exc.verify_message,
            )
            return self.backoff.next()
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, FrameError) as exc:
            log.warning("cannot reach the gateway at %s: %s", url, str(exc) or type(exc).__name__)
            return self.backoff.next()
        finally:
            self.online.clear()
        code = ws.close_code if ws is not None else None
        if code == CLOSE_POLICY_VIOLATION and self._credentials_refused():
            return self._rejected(self._last_error.message if self._last_error else "")
        if code == CLOSE_REPLACED:
            log.warning(
                "connection replaced by a newer one of server %s (same API key used twice?)",
                self.server_id,
            )
        elif ws is not None and started is None:
            log.warning("gateway closed the connection during auth (code %s)", code)
        elif started is not None:
            log.warning("connection lost (code %s)", code, extra={"server_id": self.server_id})
            if time.monotonic() - started >= opts.stable_after_s:
                self.backoff.reset()
        return self.backoff.next()

    def _credentials_refused(self) -> bool:
        """Close 1008 is also used for an idle or malformed session: only a refused key
        (or a revoked key, a deleted server) earns the slow retry."""
        return self._last_error is None or self._last_error.code == KEY_REJECTED

    def _rejected(self, reason: str) -> float:
        log.error(
            "API key rejected by the gateway (%s): check OPSWIRE_API_KEY; retrying in %.0f s",
            reason or INVALID_API_KEY,
            self.options.rejected_retry_s,
        )
        return self.options.rejected_retry_s

    async def _authenticate(self, ws: ClientConnection) -> str:
        await ws.send(encode(AgentAuth(type="auth", api_key=self.options.api_key)))
        async with asyncio.timeout(self.options.open_timeout_s):
            frame = parse_gateway_frame(await ws.recv())
        if isinstance(frame, AuthSuccess):
            return frame.server_id
        if isinstance(frame, ErrorFrame) and frame.code == KEY_REJECTED:
            raise KeyRejected(frame.message)
        detail = frame.message if isinstance(frame, ErrorFrame) else frame.type
        raise FrameError(f"unexpected reply to auth: {detail}")

    async def _serve(self, ws: ClientConnection) -> None:
        tasks = [
            asyncio.create_task(self._send_loop(ws)),
            asyncio.create_task(self._receive_loop(ws)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):  # KeyRejected, ConnectionClosed, a bug
                raise result

    async def _send_loop(self, ws: ClientConnection) -> None:
        while True:
            try:
                async with asyncio.timeout(self.options.keepalive_s):
                    frame = await self.outbox.next()
            except TimeoutError:  # nothing popped, nothing lost
                await ws.send(encode(Ping(type="ping")))
                continue
            try:
                await ws.send(encode(frame))
            except BaseException:
                self.outbox.unsend(frame)
                raise
            self.outbox.sent(frame)

    async def _receive_loop(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = parse_gateway_frame(raw)
            except FrameError as exc:
                self._invalid(raw, exc.detail)
                continue
            if isinstance(frame, ErrorFrame):
                self._last_error = frame
                log.warning(
                    "error from the gateway: %s (%s)",
                    frame.message,
                    frame.detail or "-",
                    extra={"code": frame.code},
                )
                if frame.code == KEY_REJECTED:
                    raise KeyRejected(frame.message)
            elif isinstance(frame, (CommandFrame, DockerCommandFrame)):
                self._dispatch(frame)

    def _invalid(self, raw: str | bytes, detail: str) -> None:
        """Answer a malformed command clearly if it can be identified; otherwise log it."""
        log.warning("invalid frame from the gateway", extra={"detail": detail})
        try:
            data = orjson.loads(raw)
            kind, command_id = data.get("type"), data.get("command_id")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if not isinstance(command_id, str) or not 0 < len(command_id) <= 64:
            return
        message = f"invalid {kind} frame: {detail}"
        if kind == "command":
            self.outbox.put_reply(
                CommandResponse(
                    type="command_response",
                    command_id=command_id,
                    output=message,
                    exit_code=INVALID_FRAME_EXIT_CODE,
                    duration_ms=0,
                )
            )
        elif kind == "docker_command":
            self.outbox.put_reply(
                DockerResponse(
                    type="docker_response",
                    command_id=command_id,
                    success=False,
                    message=message,
                )
            )
