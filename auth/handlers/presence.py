"""Agent presence: the connected/disconnected events (JetStream) and the gateways'
heartbeat (core NATS); the sweeper marks silent servers offline (auth/presence.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from faststream.nats import NatsMessage
from nats.aio.msg import Msg
from pydantic import ValidationError

from auth.batch import consume_batch
from auth.presence import apply_heartbeat, apply_presence, run_sweeper, told
from auth.runtime import AuthRuntime
from opswire.contract.events import PresenceEvent, PresenceHeartbeat
from opswire.contract.types import utc_now
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.nats import from_stream
from opswire.runtime.outage import OutageLog
from opswire.runtime.permissions import AUTH_PRESENCE
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

PRESENCE_BATCH = 100


def register(rt: AuthRuntime) -> None:
    register_heartbeat(rt)

    @rt.on_ready
    async def start() -> None:
        await rt.consume(presence_consumer(rt))
        settings = rt.settings

        async def sweep() -> None:
            await run_sweeper(
                rt.sessions, settings.presence_timeout, settings.presence_sweep_interval_s, rt.tell_presence
            )

        await rt.start(LoopTask(sweep, "auth-presence-sweeper"))


def presence_consumer(rt: AuthRuntime) -> PullConsumer:
    spec = PullConsumerSpec(
        stream=rt.subjects.events_stream,
        subject=rt.subjects.all_presence,
        durable=AUTH_PRESENCE,
        batch=PRESENCE_BATCH,
        # Never more than one batch in flight: a NAKed batch comes back before anything
        # newer, so connects and disconnects are applied in the order they happened.
        max_ack_pending=PRESENCE_BATCH,
        replicas=rt.settings.stream_replicas,
    )

    async def handle(raw: Sequence[Msg]) -> None:
        await consume_batch(rt, spec.durable, raw, PresenceEvent, apply_presence)

    return PullConsumer(spec, handle)


def register_heartbeat(rt: AuthRuntime) -> None:
    outage = OutageLog(log, "presence heartbeats not applied")

    @rt.broker.subscriber(rt.subjects.presence_heartbeat(), queue="auth", title="auth-heartbeat")
    async def on_heartbeat(msg: NatsMessage) -> None:
        """A gateway's list of live agents: they were seen now."""
        if from_stream(msg.reply_to):
            log.warning("ignored a stream message pushed onto the heartbeat subject")
            return
        try:
            heartbeat = PresenceHeartbeat.model_validate_json(msg.body)
        except ValidationError:
            log.warning("ignoring invalid presence heartbeat", extra={"subject": msg.raw_message.subject})
            return
        try:
            async with rt.sessions.begin() as session:
                revived = await apply_heartbeat(session, heartbeat.server_ids, utc_now())
        except Exception as exc:
            # The next heartbeat (a few seconds away) carries the same news.
            outage.failed(exc, gateway_id=heartbeat.gateway_id)
        else:
            outage.recovered()
            for server_id, connection_id in revived:
                log.info("server online again: its gateway was slow", extra={"server_id": str(server_id)})
                rt.tell_presence(told(server_id, connection_id, online=True))
