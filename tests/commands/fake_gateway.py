"""A stand-in for the gateway side of command delivery, over real NATS.

It answers `AgentDelivery` requests on one server's inbox like a gateway that
holds the agent: a `DeliveryAck` at once, then (if `answer` returns a response)
an `AgentReply` on the delivery's reply subject. `on_delivery`, if given, runs
when a delivery arrives, before it is acknowledged (to look at what the service
did before sending it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from opswire.contract.events import AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.frames import (
    CommandFrame,
    CommandResponse,
    DockerCommandFrame,
    DockerResponse,
)
from opswire.contract.subjects import Subjects

Frame = CommandFrame | DockerCommandFrame
Response = CommandResponse | DockerResponse
Answer = Callable[[Frame], Awaitable[Response | None]]
OnDelivery = Callable[[AgentDelivery], Awaitable[None]]


async def never(_frame: Frame) -> None:
    return None


class FakeGateway:
    def __init__(
        self,
        nc: NatsClient,
        subjects: Subjects,
        server_id: uuid.UUID,
        answer: Answer = never,
        delivered: bool = True,
        acks: bool = True,
        on_delivery: OnDelivery | None = None,
        refusal_code: str | None = None,
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self.server_id = server_id
        self.answer = answer
        self.delivered = delivered
        self.acks = acks  # False: take the frame but never confirm it (a stuck gateway)
        self.on_delivery = on_delivery
        self.refusal_code = refusal_code  # DeliveryAck.code when not delivered
        self.deliveries: asyncio.Queue[AgentDelivery] = asyncio.Queue()
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeGateway:
        self._sub = await self._nc.subscribe(
            self._subjects.agent_inbox(str(self.server_id)), cb=self._on_delivery
        )
        await self._nc.flush()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def reply(
        self,
        delivery: AgentDelivery,
        response: Response | None,
        error: str | None = None,
        *,
        subject: str | None = None,
        server_id: uuid.UUID | None = None,
    ) -> None:
        """Answer `delivery`; `subject`/`server_id` send it elsewhere or in another
        server's name (a forged or misrouted reply)."""
        reply = AgentReply(
            server_id=server_id or self.server_id,
            command_id=delivery.frame.command_id,
            response=response,
            error=error,
        )
        await self._nc.publish(subject or delivery.reply_subject, reply.model_dump_json().encode())
        await self._nc.flush()

    async def _on_delivery(self, msg: Msg) -> None:
        delivery = AgentDelivery.model_validate_json(msg.data)
        if self.on_delivery is not None:
            await self.on_delivery(delivery)
        if self.acks:
            ack = DeliveryAck(
                delivered=self.delivered,
                detail=None if self.delivered else "gone",
                code=None if self.delivered else self.refusal_code,
            )
            await msg.respond(ack.model_dump_json().encode())
        self.deliveries.put_nowait(delivery)
        if self.delivered:
            # Answer outside the subscription callback, as a real agent would: the
            # next delivery must not wait for this answer.
            task = asyncio.create_task(self._answer(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, delivery: AgentDelivery) -> None:
        response = await self.answer(delivery.frame)
        if response is not None:
            await self.reply(delivery, response)


def shell_response(frame: Frame, output: str, exit_code: int, **extra: object) -> CommandResponse:
    return CommandResponse.model_validate(
        {
            "type": "command_response",
            "command_id": frame.command_id,
            "output": output,
            "exit_code": exit_code,
            "duration_ms": 42,
            **extra,
        }
    )


def docker_response(frame: Frame, success: bool, message: str, data: object = None) -> DockerResponse:
    return DockerResponse(
        type="docker_response",
        command_id=frame.command_id,
        success=success,
        message=message,
        data=data,
    )
