"""One authenticated agent connection: its frames, its commands, its end.

Per-frame path (DESIGN §8): size check, parse+validate once, budget, one
serialisation, hand to the publisher. No RPC and no database per frame; the
reader only awaits the socket. Anyone may ask the session to close (control
message, the registry's idle sweeper, shutdown): a short task then sends the
error frame and the close code, which ends the read loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel
from starlette.websockets import WebSocket

from gateway.realtime.budget import Budget, Meter
from gateway.realtime.chatops import AgentDialect, Bootstrapped
from gateway.realtime.pending import PendingCommand, PendingCommands
from gateway.realtime.presence import Presence
from gateway.realtime.stamping import stamped
from gateway.realtime.wsio import (
    CLOSE_TIMEOUT_S,
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    TOO_BIG,
    CloseRequest,
    Raw,
    closing,
    receive_raw,
    refuse,
    send_error,
    send_frame,
)
from opswire.contract.events import DEADLINE_PASSED, AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.frames import (
    INVALID_FORMAT,
    AgentAuth,
    CommandFrame,
    CommandResponse,
    DockerResponse,
    FrameError,
    LogFrame,
    MetricsFrame,
    Ping,
    Pong,
    parse_agent_frame,
)
from opswire.contract.resources import AgentIdentity
from opswire.contract.subjects import Subjects
from opswire.contract.types import utc_now
from opswire.runtime import metrics
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

SERVER_BUSY = "Server busy, sample not accepted"
RATE_LIMITED = "Rate limit exceeded"
STORAGE_FULL = "Storage full, frame not stored"
ABUSE = closing(POLICY_VIOLATION, "rate_limited", RATE_LIMITED, "persistently over budget", reason="abuse")
AGENT_DISCONNECTED = "Agent disconnected"
FOREIGN_SERVER_ID = "server_id does not match the authenticated server"
IDLE = closing(POLICY_VIOLATION, "idle_timeout", "Idle timeout: no frames received", reason="idle")
TOO_LARGE = closing(TOO_BIG, "too_large", "Frame too large", reason="frame_too_large")
# Room for the Nats-Msg-Id header, which counts towards the broker's max_payload.
PUBLISH_HEADER_ALLOWANCE = 512
# Docker frames carry no timeout; the commands service waits at most this long for one.
DOCKER_REPLY_TTL_S = 600.0
# How long the waiting commands replica has to confirm an answer before any replica gets it.
REPLY_ACK_TIMEOUT_S = 1.0
_CUT = "agent session cut"
REFUSAL_PAUSE_S = 0.05


@dataclass(frozen=True)
class AgentContext:
    """What a session needs from the gateway (a slice, not the whole state)."""

    nc: NatsClient
    subjects: Subjects
    publisher: Publisher
    presence: Presence
    max_frame_bytes: int
    idle_timeout_s: float
    command_grace_s: float
    budget: Budget
    # Keys of ChatOps agents, which bootstrap over REST before they connect.
    bootstrapped: Bootstrapped = field(default_factory=Bootstrapped)


class AgentSession:
    """Lives in the socket's own task: no reader, timer or waker task per connection.

    The registry's sweeper ends idle sessions; a close asked for by anyone
    else runs as one short task that sends the error frame and the close,
    which ends the read loop.
    """

    __slots__ = (
        "_close",
        "_closer",
        "_ctx",
        "_deadline",
        "_finished",
        "_greeted",
        "_greeting",
        "_loop",
        "_meter",
        "_notice",
        "_pending",
        "_share",
        "_task",
        "_ws",
        "connected_at",
        "connection_id",
        "dialect",
        "identity",
        "last_seen",
        "server_id",
    )

    def __init__(self, ws: WebSocket, identity: AgentIdentity, ctx: AgentContext) -> None:
        self.identity = identity
        self.server_id = str(identity.server_id)
        self.connection_id = uuid.uuid4().hex
        # Orders connections of one server across gateways: the newest one stays.
        self.connected_at = utc_now()
        self._ws = ws
        self._ctx = ctx
        self._pending = PendingCommands()
        self._close: CloseRequest | None = None
        self._finished = False
        self._loop = asyncio.get_running_loop()
        self.last_seen = self._loop.time()
        self._meter = Meter(ctx.budget, self.last_seen)
        self._share = ctx.publisher.share(self._stream_refused)
        self._task: asyncio.Task[object] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._notice: asyncio.Task[bool] | None = None
        # Deliveries wait until the agent has its auth_success (a future only if one must wait).
        self._greeted = False
        self._greeting: asyncio.Future[None] | None = None
        # The protocol this agent speaks (seed or ChatOps), translated at this edge.
        self.dialect = AgentDialect(ctx.bootstrapped.recent(identity.key_id, self.last_seen))

    @property
    def closing(self) -> bool:
        return self._close is not None or self._finished

    def request_close(self, request: CloseRequest) -> None:
        """Ask the session to end (first request wins); safe from any task."""
        if self._close is None and not self._finished:
            self._close = request
            self._closer = self._loop.create_task(self._cut(request))

    async def _cut(self, request: CloseRequest) -> None:
        await refuse(self._ws, request)
        # A peer that never answers the close: stop waiting for its frames.
        self._deadline = self._loop.call_later(CLOSE_TIMEOUT_S, self._stop_reading)

    def _stop_reading(self) -> None:
        if self._task is not None:
            self._task.cancel(msg=_CUT)

    async def serve(self) -> CloseRequest:
        """Read frames until the socket ends; returns why it ended."""
        task = self._task = asyncio.current_task()
        try:
            await self._read_loop()
        except asyncio.CancelledError as exc:
            if task is None or exc.args != (_CUT,):
                raise
            task.uncancel()
        finally:
            self._task = None
        if self._closer is not None:
            await self._closer  # the error frame and the close are sent (bounded) before we go
        return self._close or CloseRequest(1000, "disconnected")

    def expire(self, now: float) -> None:
        """Called by the registry's sweeper: end the session if it has been silent too long."""
        if now - self.last_seen >= self._ctx.idle_timeout_s:
            self.request_close(IDLE)

    async def greet(self, frame: BaseModel) -> bool:
        """Send the agent its `auth_success`: nothing is delivered to it before that."""
        sent = await send_frame(self._ws, frame)
        self._end_greeting()
        return sent

    def _end_greeting(self) -> None:
        self._greeted = True
        if self._greeting is not None and not self._greeting.done():
            self._greeting.set_result(None)

    async def finish(self, reason: str) -> None:
        """After the socket is gone: answer waiting commands, publish the offline event."""
        self._end_greeting()  # a delivery waiting for the greeting is refused below
        self._finished = True
        self._share.close()
        if self._deadline is not None:
            self._deadline.cancel()
        for pending in self._pending.drain():
            await self._reply(pending, error=AGENT_DISCONNECTED)
        self._ctx.presence.offline(self.identity.server_id, self.connection_id, reason)

    async def deliver(self, delivery: AgentDelivery) -> DeliveryAck:
        """Forward a command frame to the agent and remember where its answer goes.

        A delivery past its `not_after` is refused: the commands service has recorded the
        command as timed out, so it must not run now.
        """
        if not self._greeted:
            # Reachable once registered, which is just before the agent learns it is in.
            if self._greeting is None:
                self._greeting = self._loop.create_future()
            await self._greeting
        if self.closing:
            return DeliveryAck(delivered=False, detail="Agent not connected")
        now = utc_now()
        if delivery.not_after is not None and delivery.not_after <= now:
            return DeliveryAck(delivered=False, detail="Deadline passed", code=DEADLINE_PASSED)
        frame = delivery.frame
        timeout_s = frame.timeout_s if isinstance(frame, CommandFrame) else DOCKER_REPLY_TTL_S
        ttl_s = timeout_s + self._ctx.command_grace_s
        if delivery.not_after is not None:
            ttl_s = max(ttl_s, (delivery.not_after - now).total_seconds())
        refused = self._pending.add(
            frame.command_id, delivery.reply_subject, ttl_s, delivery.fallback_subject
        )
        if refused is not None:
            return DeliveryAck(delivered=False, detail=refused)
        outbound = self.dialect.outbound(frame)
        if isinstance(outbound, DockerResponse):  # the dialect answers this one itself
            await self._accept_response(outbound)
            return DeliveryAck(delivered=True)
        if not await send_frame(self._ws, outbound):
            self._pending.pop(frame.command_id)
            self.dialect.forget(frame.command_id)
            return DeliveryAck(delivered=False, detail="Agent connection lost")
        return DeliveryAck(delivered=True)

    # --- reading ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while (raw := await receive_raw(self._ws)) is not None:
                self.last_seen = self._loop.time()
                # uvicorn refuses oversized frames first (ws_max_size); this guards other servers.
                if len(raw) > self._ctx.max_frame_bytes:
                    self.request_close(TOO_LARGE)
                    return
                if self._meter.affords(len(raw), self.last_seen):
                    await self._on_frame(raw)
                else:
                    await self._over_budget()
        except Exception:
            log.exception("agent session failed", extra={"server_id": self.server_id})
            self.request_close(closing(INTERNAL_ERROR, "internal", "Internal error", reason="error"))

    async def _on_frame(self, raw: Raw) -> None:
        try:
            frame = parse_agent_frame(self.dialect.inbound(raw))
        except FrameError as exc:
            metrics.frame("invalid_format")
            await send_error(self._ws, "invalid_format", INVALID_FORMAT, exc.detail)
            return
        if isinstance(frame, Ping):
            await send_frame(self._ws, Pong())
            return
        if isinstance(frame, AgentAuth):
            await send_error(self._ws, "invalid_format", "Already authenticated")
            return
        if not self._owns(frame.server_id):
            metrics.frame("foreign_server_id")
            await send_error(self._ws, "invalid_format", INVALID_FORMAT, FOREIGN_SERVER_ID)
            return
        if isinstance(frame, MetricsFrame | LogFrame):
            accepted = await self._accept(frame, len(raw))
            if accepted and isinstance(frame, MetricsFrame) and (ack := self.dialect.accepted(frame)):
                await send_frame(self._ws, ack)
        else:
            await self._accept_response(frame)

    def _owns(self, claimed: str | None) -> bool:
        if claimed is None or claimed == self.server_id:
            return True
        try:
            return uuid.UUID(claimed) == self.identity.server_id
        except ValueError:
            return False

    async def _accept(self, frame: MetricsFrame | LogFrame, size: int) -> bool:
        """The one place a sample or log line is accepted: budget, stamp, publish."""
        if not self._meter.take(isinstance(frame, MetricsFrame), size, self.last_seen):
            await self._over_budget()
            return False
        payload = stamped(frame, self.server_id, utc_now())
        stamp = frame.timestamp.isoformat()
        if isinstance(frame, MetricsFrame):
            msg_id = f"{self.server_id}:{stamp}"
            subject = self._ctx.subjects.metrics(self.server_id)
        else:
            digest = hashlib.blake2b(
                f"{frame.source or ''}\x00{frame.message}".encode(), digest_size=8
            ).hexdigest()
            msg_id = f"{self.server_id}:{stamp}:{digest}"
            subject = self._ctx.subjects.logs(self.server_id)
        return await self._publish(subject, payload, msg_id)

    async def _over_budget(self) -> None:
        """A frame over budget is not accepted; too many of them end the connection."""
        metrics.frame("rate_limited")
        if self._meter.refused(self.last_seen):
            log.warning("agent over budget, closing", extra={"server_id": self.server_id})
            self.request_close(ABUSE)
        else:
            await send_error(self._ws, "rate_limited", RATE_LIMITED)
            # Stop reading this socket a moment: TCP pushes back on the flood, which then
            # costs the gateway a few refused frames per second, not a core.
            await asyncio.sleep(REFUSAL_PAUSE_S)

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> bool:
        """Hand the payload to the publisher; False (the agent is told why) if not accepted."""
        # A frame under our size limit can still exceed the broker's once server_id and
        # received_at are added; it could never be published, so it is not accepted.
        limit = self._ctx.nc.max_payload - PUBLISH_HEADER_ALLOWANCE
        if len(payload) > limit:
            metrics.frame("too_large")
            await send_error(
                self._ws, "too_large", INVALID_FORMAT, f"frame too large to publish (limit {limit} bytes)"
            )
        elif not self._ctx.publisher.submit(subject, payload, msg_id, share=self._share):
            metrics.frame("busy")
            await send_error(self._ws, "busy", SERVER_BUSY)
        else:
            metrics.frame("accepted")
            return True
        return False

    def _stream_refused(self, reason: str) -> None:
        """The stream refused one of our accepted frames (it is full): tell the agent, once at a time."""
        log.warning("frame refused by the stream", extra={"server_id": self.server_id, "reason": reason})
        if self._notice is None or self._notice.done():
            self._notice = self._loop.create_task(send_error(self._ws, "storage_full", STORAGE_FULL))

    async def _accept_response(self, frame: CommandResponse | DockerResponse) -> None:
        pending = self._pending.pop(frame.command_id)
        if pending is None:
            await send_error(self._ws, "unknown_command", "Unknown command_id", frame.command_id)
            return
        await self._reply(pending, response=frame)

    async def _reply(
        self,
        pending: PendingCommand,
        response: CommandResponse | DockerResponse | None = None,
        error: str | None = None,
    ) -> None:
        """Hand the answer to the commands replica waiting for it (it confirms); if none
        does (it died) or it does not confirm in time, to any replica via the fallback
        subject. The history takes an answer once, so both reaching it is harmless."""
        reply = AgentReply(
            server_id=self.identity.server_id,
            command_id=pending.command_id,
            response=response,
            error=error,
        )
        payload = reply.model_dump_json().encode()
        context = {"server_id": self.server_id, "command_id": pending.command_id}
        try:
            if pending.fallback_subject is None:
                await self._ctx.nc.publish(pending.reply_subject, payload)
                return
            try:
                await self._ctx.nc.request(pending.reply_subject, payload, timeout=REPLY_ACK_TIMEOUT_S)
                return
            except (NoRespondersError, NatsTimeoutError):
                log.info("waiting commands replica gone; answer sent to any replica", extra=context)
            await self._ctx.nc.publish(pending.fallback_subject, payload)
        except Exception as exc:
            log.warning("agent reply not sent", extra=context | {"error": repr(exc)})
