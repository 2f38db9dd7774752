"""The agents' answers, relayed by the gateway holding them (commands/dispatch.py).

Two subscriptions: this replica's own reply subjects (no queue group: the answers to
the commands this replica waits on; each is confirmed, so the gateway knows it was
heard), and the shared fallback subjects (queue group: an answer whose waiter died is
recorded by any one replica).
"""

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
# What the waiting replica confirms an answer with (any reply will do).
HEARD = b"ok"


def register(rt: CommandsRuntime) -> None:
    async def take(msg: NatsMessage, base: str) -> None:
        if from_stream(msg.reply_to):
            log.warning("ignored a stream message pushed onto a reply subject")
            return
        token = reply_token_of(msg.raw_message.subject)
        try:
            reply = AgentReply.model_validate_json(msg.body)
        except ValidationError:
            log.warning("malformed agent reply dropped", extra={"subject": base})
            return
        await rt.service.on_reply(reply, token)

    # One subject per command (`<reply_base>.<token>`); the token is never logged.
    @rt.broker.subscriber(
        reply_subscription(rt.reply_base),
        max_workers=REPLY_WORKERS,
        title="agent replies (this replica)",
        description="AgentReply from the gateway holding the agent, on the command's own "
        "subject; confirmed with a reply when the gateway asks.",
    )
    async def on_agent_reply(msg: NatsMessage) -> bytes:
        # Confirmed once handled (a refused reply too: another replica would refuse it
        # alike); a replica that is stuck or failing does not confirm, so the gateway
        # falls back to any replica.
        await take(msg, rt.reply_base)
        return HEARD

    @rt.broker.subscriber(
        reply_subscription(rt.fallback_base),
        queue="commands",
        max_workers=REPLY_WORKERS,
        title="agent replies (any replica)",
        description="AgentReply whose waiting replica did not confirm it: recorded by one replica.",
        no_reply=True,
    )
    async def on_orphan_reply(msg: NatsMessage) -> None:
        await take(msg, rt.fallback_base)
