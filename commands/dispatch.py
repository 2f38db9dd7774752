"""Delivering a frame to whichever gateway holds the agent, and waiting for its answer.

The gateway acknowledges an `AgentDelivery` at once and publishes the agent's
answer later, as an `AgentReply`, to this replica's own reply subject (no queue
group), so the replica that waits is the one that hears it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from opswire.contract.events import AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.frames import CommandFrame, DockerCommandFrame
from opswire.contract.subjects import Subjects

log = logging.getLogger(__name__)

NO_RESPONDERS_RECHECK_S = 0.025


class DeliveryError(Exception):
    """The frame did not (provably) reach an agent."""


class AgentNotConnected(DeliveryError):
    """No gateway holds the agent: nothing was delivered."""


class DeliveryUnconfirmed(DeliveryError):
    """A gateway may have the frame but did not confirm it in time."""


class Dispatcher:
    def __init__(
        self, nc: NatsClient, subjects: Subjects, reply_subject: str, delivery_timeout_s: float
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self.reply_subject = reply_subject
        self._delivery_timeout_s = delivery_timeout_s
        self._waiting: dict[str, asyncio.Future[AgentReply]] = {}

    async def dispatch(
        self,
        server_id: uuid.UUID,
        frame: CommandFrame | DockerCommandFrame,
        requested_by: uuid.UUID | None,
        wait_s: float,
    ) -> AgentReply | None:
        """Deliver `frame` and wait up to `wait_s` for the answer; None if none came."""
        answer: asyncio.Future[AgentReply] = asyncio.get_running_loop().create_future()
        # Registered before delivery: a fast agent may answer before the ack arrives.
        self._waiting[frame.command_id] = answer
        try:
            await self._deliver(server_id, frame, requested_by)
            try:
                return await asyncio.wait_for(answer, wait_s)
            except TimeoutError:
                return None
        finally:
            # Synchronous with the timeout above: a reply after this point is "late".
            self._waiting.pop(frame.command_id, None)

    def take(self, reply: AgentReply) -> bool:
        """Hand a reply to its waiting request; False if nobody waits any more (late)."""
        answer = self._waiting.pop(reply.command_id, None)
        if answer is None or answer.done():
            return False
        answer.set_result(reply)
        return True

    async def _deliver(
        self,
        server_id: uuid.UUID,
        frame: CommandFrame | DockerCommandFrame,
        requested_by: uuid.UUID | None,
    ) -> None:
        delivery = AgentDelivery(
            frame=frame, reply_subject=self.reply_subject, requested_by=requested_by
        )
        context = {"server_id": str(server_id), "command_id": frame.command_id}
        subject = self._subjects.agent_inbox(str(server_id))
        payload = delivery.model_dump_json().encode()
        try:
            try:
                msg = await self._nc.request(subject, payload, timeout=self._delivery_timeout_s)
            except NoRespondersError:
                # A gateway's brand-new inbox subscription can be missed for about a
                # millisecond after it was flushed (seen with nats-server 2.15), e.g. a
                # command sent just as the agent connects: look once more before saying no.
                await asyncio.sleep(NO_RESPONDERS_RECHECK_S)
                msg = await self._nc.request(subject, payload, timeout=self._delivery_timeout_s)
        except NoRespondersError:
            raise AgentNotConnected("Agent is not connected") from None
        except NatsTimeoutError:
            log.warning("delivery not confirmed", extra=context)
            raise DeliveryUnconfirmed(
                "The gateway holding the agent did not confirm delivery"
            ) from None
        try:
            ack = DeliveryAck.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed delivery ack", extra=context)
            raise DeliveryUnconfirmed("The gateway sent a malformed delivery ack") from None
        if not ack.delivered:
            log.info("agent not connected", extra=context | {"detail": ack.detail})
            raise AgentNotConnected("Agent is not connected")
