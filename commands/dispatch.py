"""Delivering a frame to whichever gateway holds the agent, and waiting for its answer.

The gateway acknowledges an `AgentDelivery` at once and sends the agent's answer later,
as an `AgentReply`, to the reply subject the delivery named. Each command gets its own:
`<prefix>.rpc.commands.replies.<instance_id>.<token>`, the token random and unguessable
and stored with the command, so only whoever saw the delivery can answer it. This
replica subscribes to `...replies.<instance_id>.*` (no queue group) and confirms each
answer, so the replica that waits is the one that hears it. If nobody confirms (the
replica died), the gateway sends the answer to the delivery's fallback subject,
`<prefix>.rpc.commands.answers.<token>`, which every replica takes in a queue group and
records in the history (the token still decides).

A waiting command is a future in `_waiting`, not a worker: any number can wait.
The delivery carries the command's deadline (`not_after`); past it the gateway refuses
the frame, so a command given up here never runs later.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from opswire.contract.events import DEADLINE_PASSED, AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.frames import CommandFrame, DockerCommandFrame
from opswire.contract.subjects import Subjects
from opswire.contract.types import utc_now

log = logging.getLogger(__name__)

NO_RESPONDERS_RECHECK_S = 0.025
REPLY_TOKEN_BYTES = 16


def new_reply_token() -> str:
    """A fresh reply-subject token: 32 hex characters, one valid subject token."""
    return secrets.token_hex(REPLY_TOKEN_BYTES)


def reply_subscription(reply_base: str) -> str:
    """What a replica subscribes to: the reply subjects of all its commands."""
    return f"{reply_base}.*"


def reply_token_of(subject: str) -> str:
    """The token of a subject matched by `reply_subscription` (its last token)."""
    return subject.rpartition(".")[2]


def same_token(given: str | None, expected: str | None) -> bool:
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class DeliveryError(Exception):
    """The frame did not (provably) reach an agent."""


class AgentNotConnected(DeliveryError):
    """No gateway holds the agent: nothing was delivered."""


class DeliveryUnconfirmed(DeliveryError):
    """A gateway may have the frame but did not confirm it in time."""


class DeadlinePassed(DeliveryError):
    """The gateway refused the frame: the command's deadline had passed. It never runs."""


@dataclass(frozen=True, slots=True)
class Dispatched:
    """How a delivered command ended here: its answer (None: none by the deadline), and
    whether the gateway confirmed the delivery (if not, the agent may or may not have it)."""

    reply: AgentReply | None
    confirmed: bool = True


@dataclass(frozen=True, slots=True)
class _Waiter:
    answer: asyncio.Future[AgentReply]
    server_id: uuid.UUID
    reply_token: str


class Dispatcher:
    def __init__(
        self,
        nc: NatsClient,
        subjects: Subjects,
        reply_base: str,
        fallback_base: str,
        delivery_timeout_s: float,
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self._reply_base = reply_base
        self._fallback_base = fallback_base
        self._delivery_timeout_s = delivery_timeout_s
        self._waiting: dict[str, _Waiter] = {}

    def reply_subject(self, reply_token: str) -> str:
        return f"{self._reply_base}.{reply_token}"

    async def dispatch(
        self,
        server_id: uuid.UUID,
        frame: CommandFrame | DockerCommandFrame,
        requested_by: uuid.UUID | None,
        deadline: datetime,
        reply_token: str,
    ) -> Dispatched:
        """Deliver `frame` (to be refused after `deadline`) and wait until `deadline` for
        the answer on the reply subject of `reply_token`.

        Raises AgentNotConnected or DeadlinePassed when nothing was delivered. An
        unconfirmed delivery is still waited for: the agent may have it, and an answer
        is an answer; a caller told "unavailable" must not see the command run.
        """
        answer: asyncio.Future[AgentReply] = asyncio.get_running_loop().create_future()
        # Registered before delivery: a fast agent may answer before the ack arrives.
        self._waiting[frame.command_id] = _Waiter(answer, server_id, reply_token)
        confirmed = True
        try:
            try:
                await self._deliver(server_id, frame, requested_by, deadline, reply_token)
            except DeliveryUnconfirmed:
                confirmed = False
            wait_s = max((deadline - utc_now()).total_seconds(), 0.0)
            try:
                return Dispatched(await asyncio.wait_for(answer, wait_s), confirmed)
            except TimeoutError:
                return Dispatched(None, confirmed)
        finally:
            # Synchronous with the timeout above: a reply after this point is "late".
            self._waiting.pop(frame.command_id, None)

    def take(self, reply: AgentReply, reply_token: str) -> bool:
        """Hand a reply to its waiting request if it came on that request's subject from
        its server; False otherwise (late, or not the answer: the store decides)."""
        waiter = self._waiting.get(reply.command_id)
        if (
            waiter is None
            or waiter.answer.done()
            or waiter.server_id != reply.server_id
            or not same_token(reply_token, waiter.reply_token)
        ):
            return False
        del self._waiting[reply.command_id]
        waiter.answer.set_result(reply)
        return True

    async def _deliver(
        self,
        server_id: uuid.UUID,
        frame: CommandFrame | DockerCommandFrame,
        requested_by: uuid.UUID | None,
        deadline: datetime,
        reply_token: str,
    ) -> None:
        delivery = AgentDelivery(
            frame=frame,
            reply_subject=self.reply_subject(reply_token),
            requested_by=requested_by,
            not_after=deadline,
            fallback_subject=f"{self._fallback_base}.{reply_token}",
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
            raise DeliveryUnconfirmed("The gateway holding the agent did not confirm delivery") from None
        try:
            ack = DeliveryAck.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed delivery ack", extra=context)
            raise DeliveryUnconfirmed("The gateway sent a malformed delivery ack") from None
        if not ack.delivered and ack.code == DEADLINE_PASSED:
            log.warning("delivery refused: deadline passed", extra=context)
            raise DeadlinePassed("The command's deadline passed before it reached the agent")
        if not ack.delivered:
            log.info("agent not connected", extra=context | {"detail": ack.detail})
            raise AgentNotConnected("Agent is not connected")
