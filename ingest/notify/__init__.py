"""Notifications (issue 12): a user's channels (Apprise URLs), alerts sent to them off the
ingest path, and the `offline` alert rule fed by presence events.

    alerts table (events not queued yet) --sender--> outbox rows --sender--> Apprise
    presence (OPSWIRE_EVENTS) --INGEST_PRESENCE--> offline rules -> alerts
"""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext

from ingest.handlers.telemetry import consumer_spec
from ingest.notify import handlers
from ingest.notify.consuming import event_batches
from ingest.notify.offline import apply_presence
from ingest.notify.sender import NotificationSender
from ingest.runtime import IngestRuntime
from opswire.contract.events import PresenceEvent
from opswire.runtime.jetstream import PullConsumer
from opswire.runtime.permissions import INGEST_PRESENCE


class LateBinding(PullConsumer):
    """A consumer on a stream another service owns (auth's OPSWIRE_EVENTS): it may not exist
    yet when ingest starts, so binding is retried by the consumer's loop instead of failing
    start-up."""

    async def start(self, js: JetStreamContext) -> None:
        self._js = js
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self._spec.durable}")


def register(rt: IngestRuntime) -> None:
    handlers.register(rt)
    subjects, settings = rt.subjects, rt.settings

    @rt.on_ready
    async def start_notifications() -> None:
        await rt.start(NotificationSender(rt.sessions, settings))
        await rt.consume(
            LateBinding(
                consumer_spec(settings, subjects.events_stream, subjects.all_presence, INGEST_PRESENCE),
                event_batches(
                    INGEST_PRESENCE,
                    PresenceEvent,
                    rt.sessions,
                    apply_presence(lambda: rt.publisher),
                    settings.retry_delay_s,
                ),
            )
        )
