"""Nothing reaches an agent before its `auth_success`: a delivery that arrives while the
session is being registered waits for the greeting (or is refused if the socket ends)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from nats.aio.client import Client as NatsClient
from starlette.websockets import WebSocket

from gateway.realtime.agent_session import AgentContext, AgentSession
from gateway.realtime.budget import Budget
from gateway.realtime.presence import Presence
from opswire.contract.events import AgentDelivery
from opswire.contract.frames import AuthSuccess, CommandFrame
from opswire.contract.resources import AgentIdentity
from opswire.runtime.publisher import Publisher
from tests.helpers.backends import Namespace


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


class NoPresence:
    def offline(self, *_: Any) -> None:
        pass


def _session(nc: NatsClient, namespace: Namespace, ws: RecordingSocket) -> AgentSession:
    ctx = AgentContext(
        nc=nc,
        subjects=namespace.subjects,
        publisher=Publisher(nc, 10),
        presence=cast(Presence, NoPresence()),
        max_frame_bytes=1 << 20,
        idle_timeout_s=60,
        command_grace_s=5,
        budget=Budget(10, 10, 1 << 20, 30, 100, 10),
    )
    identity = AgentIdentity(server_id=uuid.uuid4(), key_id=uuid.uuid4(), user_id=uuid.uuid4())
    return AgentSession(cast(WebSocket, ws), identity, ctx)


def _delivery() -> AgentDelivery:
    return AgentDelivery(frame=CommandFrame(command_id="early", command="uptime"), reply_subject="r.1")


async def test_a_delivery_before_the_greeting_waits_for_it(nc: NatsClient, namespace: Namespace) -> None:
    ws = RecordingSocket()
    session = _session(nc, namespace, ws)
    delivering = asyncio.create_task(session.deliver(_delivery()))
    await asyncio.sleep(0)  # let the delivery start: it must now be waiting
    assert not delivering.done() and ws.sent == []
    assert await session.greet(AuthSuccess(server_id=session.server_id))
    ack = await delivering
    assert ack.delivered
    assert [AuthSuccess.model_validate_json(ws.sent[0]).type, '"command_id":"early"' in ws.sent[1]] == [
        "auth_success",
        True,
    ]


async def test_a_delivery_waiting_for_a_socket_that_ends_is_refused(
    nc: NatsClient, namespace: Namespace
) -> None:
    ws = RecordingSocket()
    session = _session(nc, namespace, ws)
    delivering = asyncio.create_task(session.deliver(_delivery()))
    await asyncio.sleep(0)
    await session.finish("disconnected")
    ack = await delivering
    assert (ack.delivered, ack.detail) == (False, "Agent not connected")
    assert ws.sent == []
