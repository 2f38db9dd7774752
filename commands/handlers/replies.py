"""This replica's reply subjects: the agents' answers, relayed by the gateway holding them."""

from __future__ import annotations

import logging

from faststream.nats import NatsMessage
from pydantic import ValidationError

from commands.dispatch import reply_subscription, reply_token_of
from commands.runtime import CommandsRuntime
from opswire.contract.events import AgentReply
from opswire.runtime.nats import from_stream

log = logging.getLogger(__name__)

# Late replies touch the database; let a slow one not hold up replies that are awaited.
REPLY_WORKERS = 16


def register(rt: CommandsRuntime) -> None:
    reply_base = rt.reply_base

    # No queue group: every reply for this replica's commands must reach this replica.
    # One subject per command (`<reply_base>.<token>`); the token is never logged.
    @rt.broker.subscriber(
        reply_subscription(reply_base),
        max_workers=REPLY_WORKERS,
        title="agent replies (this replica)",
        description="AgentReply from the gateway holding the agent, on the command's own subject.",
    )
    async def on_agent_reply(msg: NatsMessage) -> None:
        if from_stream(msg.reply_to):
            log.warning("ignored a stream message pushed onto a reply subject")
            return
        token = reply_token_of(msg.raw_message.subject)
        try:
            reply = AgentReply.model_validate_json(msg.body)
        except ValidationError:
            log.warning("malformed agent reply dropped", extra={"subject": reply_base})
            return
        await rt.service.on_reply(reply, token)
