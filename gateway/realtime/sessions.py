"""The agents this gateway holds, and the per-server NATS subscriptions that reach them.

For each connected server the gateway makes one subscription (core NATS, no queue
group), `agent_any(sid)`, which takes both `agent_inbox(sid)` (command deliveries,
request/reply) and `agent_control(sid)` (close notices): one subscription object
per agent, not two, is a good part of what an idle connection costs. No
subscription means no agent here, so a delivery to a server connected nowhere
fails at once with no responders.

A control notice is handled at once; a delivery runs as its own task, so a
close notice never waits behind a delivery to a slow socket.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from gateway.realtime.agent_session import AgentSession
from gateway.realtime.wsio import POLICY_VIOLATION, REPLACED, CloseRequest, closing
from opswire.contract.events import AgentControl, AgentDelivery, DeliveryAck
from opswire.contract.subjects import Subjects
from opswire.runtime.nats import from_stream

log = logging.getLogger(__name__)

_CLOSE_FOR = {
    "replaced": closing(REPLACED, "replaced", "Replaced by a newer connection"),
    # The agent's key no longer opens a session either way: the same code as a bad key.
    "revoked": closing(POLICY_VIOLATION, "invalid_key", "API key revoked", reason="revoked"),
    "deleted": closing(POLICY_VIOLATION, "invalid_key", "Server deleted", reason="deleted"),
}


class ShuttingDown(Exception):
    """The gateway is stopping and takes no new agents."""


@dataclass
class _Server:
    sessions: dict[str, AgentSession] = field(default_factory=dict)  # by connection id, oldest first
    subscriptions: list[Subscription] = field(default_factory=list)
    # Set once the subscriptions are live at the NATS server; None after that.
    ready: asyncio.Future[None] | None = None
    leaving: bool = False  # its last session is going: its subscriptions are being drained

    def current(self) -> AgentSession | None:
        """The newest session not on its way out: the one commands go to."""
        for session in reversed(self.sessions.values()):
            if not session.closing:
                return session
        return None


class SessionRegistry:
    """Connects run concurrently: only the first session of a server subscribes (and
    waits for the round trip); others of the same server wait for that, nobody else does.
    One sweeper task ends idle sessions of every server.
    """

    def __init__(self, nc: NatsClient, subjects: Subjects, idle_timeout_s: float) -> None:
        self._nc = nc
        self._subjects = subjects
        self._servers: dict[str, _Server] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self._stopping = False
        self._sweep_every_s = min(max(idle_timeout_s / 10, 0.05), 1.0)
        self._sweeper: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()  # held until done (the loop keeps weak refs)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="opswire-agent-idle-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    def live_server_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(sid) for sid, server in self._servers.items() if server.current() is not None]

    def sessions(self) -> list[AgentSession]:
        return [s for server in self._servers.values() for s in server.sessions.values()]

    async def add(self, session: AgentSession) -> None:
        if self._stopping:
            raise ShuttingDown
        sid = session.server_id
        server = self._servers.get(sid)
        if server is None or server.leaving:
            server = self._servers[sid] = _Server()
            server.sessions[session.connection_id] = session
            self._empty.clear()
            ready = server.ready = asyncio.get_running_loop().create_future()
            try:
                await self._subscribe(sid, server)
            except BaseException:
                ready.set_exception(ConnectionError("the agent's subscriptions were not made"))
                ready.exception()  # retrieved: joiners may be none
                raise
            else:
                ready.set_result(None)
            finally:
                server.ready = None
            return
        server.sessions[session.connection_id] = session
        if server.ready is not None:
            await asyncio.shield(server.ready)

    async def _subscribe(self, sid: str, server: _Server) -> None:
        try:
            server.subscriptions = [
                await self._nc.subscribe(
                    self._subjects.agent_any(sid), cb=functools.partial(self._on_message, sid)
                ),
            ]
            # The subscriptions must be live at the server before anyone is told we are.
            await self._nc.flush()
        except BaseException:
            # Nothing half-made stays: this session (and any that joined meanwhile) is not held.
            self._servers.pop(sid, None)
            await self._drop(server.subscriptions)
            if not self._servers:
                self._empty.set()
            raise

    async def remove(self, session: AgentSession) -> None:
        sid = session.server_id
        server = self._servers.get(sid)
        if server is None or session.connection_id not in server.sessions:
            return
        if len(server.sessions) == 1 and not server.leaving:
            # The last one: a new connection of this server now gets a fresh entry. Drain first:
            # deliveries already received still get their answer ("not connected"), and once
            # the session is gone here, new ones get no responders at once rather than silence.
            server.leaving = True
            await self._drop(server.subscriptions, drain=True)
            if self._servers.get(sid) is server:
                del self._servers[sid]
        server.sessions.pop(session.connection_id, None)
        if not self._servers:
            self._empty.set()

    @staticmethod
    async def _drop(subscriptions: list[Subscription], drain: bool = False) -> None:
        for sub in subscriptions:
            try:
                await (sub.drain() if drain else sub.unsubscribe())  # type: ignore[no-untyped-call]
            except Exception as exc:  # connection closing: the server forgets it anyway
                log.debug("unsubscribe failed", extra={"error": repr(exc)})

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._sweep_every_s)
            now = loop.time()
            for server in list(self._servers.values()):
                for session in list(server.sessions.values()):
                    session.expire(now)

    async def close_all(self, request: CloseRequest, timeout_s: float) -> None:
        """Stop taking agents, close every session and wait (bounded) for their ends."""
        self._stopping = True
        for session in self.sessions():
            session.request_close(request)
        try:
            await asyncio.wait_for(self._empty.wait(), timeout_s)
        except TimeoutError:
            log.error("agent sessions still open at shutdown", extra={"count": len(self.sessions())})

    async def _on_message(self, sid: str, msg: Msg) -> None:
        kind = msg.subject.rpartition(".")[2]
        if kind == "control":
            await self._on_control(sid, msg)
        elif kind == "inbox":
            delivery = asyncio.create_task(self._on_inbox(sid, msg))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
        else:  # only the gateway's and the services' roles may publish here: a bug, not an attack
            log.warning("ignored a message on an unknown agent subject", extra={"subject": msg.subject})

    async def _on_control(self, sid: str, msg: Msg) -> None:
        if from_stream(msg.reply):
            log.warning("ignored a stream message pushed onto a control subject", extra={"server_id": sid})
            return
        try:
            control = AgentControl.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed agent control message", extra={"server_id": sid})
            return
        server = self._servers.get(sid)
        if server is None:
            return
        request = _CLOSE_FOR[control.reason]
        for session in list(server.sessions.values()):
            if control.reason == "replaced" and not _older(session, control):
                continue
            if control.reason == "revoked" and control.key_id not in (
                None,
                session.identity.key_id,
            ):
                continue
            log.info(
                "closing agent",
                extra={
                    "server_id": sid,
                    "connection_id": session.connection_id,
                    "reason": control.reason,
                },
            )
            session.request_close(request)

    async def _on_inbox(self, sid: str, msg: Msg) -> None:
        if from_stream(msg.reply):
            log.warning("ignored a stream message pushed onto an agent inbox", extra={"server_id": sid})
            return
        try:
            delivery = AgentDelivery.model_validate_json(msg.data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            ack = DeliveryAck(delivered=False, detail=f"Invalid delivery: {first['msg']}")
        else:
            server = self._servers.get(sid)
            session = server.current() if server is not None else None
            if session is None:
                ack = DeliveryAck(delivered=False, detail="Agent not connected")
            else:
                ack = await session.deliver(delivery)
        if msg.reply:
            try:
                await msg.respond(ack.model_dump_json().encode())
            except Exception as exc:
                log.warning("delivery ack not sent", extra={"server_id": sid, "error": repr(exc)})


def _older(session: AgentSession, control: AgentControl) -> bool:
    """Is `session` older than the connection that announced itself in `control`?

    Two agents authenticating at once on different gateways each announce
    themselves; comparing (connected_at, connection_id) makes exactly one win.
    """
    if session.connection_id == control.keep_connection_id:
        return False
    if control.connected_at is None:
        return True
    return (session.connected_at, session.connection_id) < (
        control.connected_at,
        control.keep_connection_id or "",
    )
