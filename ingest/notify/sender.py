"""The delivery loop, off the ingest path: queues new alert events (outbox.py), then
sends what the outbox holds.

Each due delivery is leased, sent through Apprise, then removed (sent) or
rescheduled with exponential backoff and jitter (failed), up to a number of
tries; the channel keeps its last error for the owner to see. Replicas share
the outbox (rows are leased with SKIP LOCKED), and a crashed replica's lease
simply runs out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.notify import apprise_url
from ingest.notify import store as notify_store
from ingest.notify.models import Delivery
from ingest.notify.outbox import queue_new_alert_events
from ingest.settings import IngestSettings
from opswire.contract.types import utc_now
from opswire.runtime import metrics
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

BATCH = 20
# The loop looks for new alert events and due deliveries at least this often: the latency
# of a notification (an indexed look-up for rows not queued yet, so cheap when idle).
IDLE_POLL_S = 1.0


def retry_delay(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: a random delay up to base * 2^attempts."""
    ceiling = min(max_s, base_s * 2 ** min(attempts, 30))
    return random.uniform(ceiling / 2, ceiling)


class NotificationSender(LoopTask):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: IngestSettings) -> None:
        super().__init__(self._loop, name="notification-sender")
        self._sessions = sessions
        self._settings = settings

    async def _loop(self) -> None:
        failing = False
        while True:
            try:
                busy = await self.send_due()
                failing = False
            except Exception as exc:  # database away: try again at the next poll
                if not failing:
                    log.warning("notification outbox unavailable", extra={"error": repr(exc)})
                failing, busy = True, False
            if busy:
                continue
            await asyncio.sleep(await self._idle_wait())

    async def _idle_wait(self) -> float:
        try:
            async with self._sessions() as session:
                due = await notify_store.next_due(session)
        except Exception:
            return IDLE_POLL_S
        if due is None:
            return IDLE_POLL_S
        return max(0.05, min(IDLE_POLL_S, (due - utc_now()).total_seconds()))

    async def send_due(self) -> bool:
        """Queue new alert events, send one batch of due deliveries; whether there was work."""
        lease = timedelta(seconds=self._settings.notify_timeout_s * 2 + 5)
        async with self._sessions.begin() as session:
            handled = await queue_new_alert_events(session, self._settings.public_url)
        async with self._sessions.begin() as session:
            claimed = await notify_store.claim_due(session, lease, BATCH)
        for delivery, url in claimed:
            await self._send(delivery, url)
        return bool(claimed) or handled > 0

    async def _send(self, delivery: Delivery, url: str) -> None:
        settings = self._settings
        error = await apprise_url.send(
            url, delivery.title, orjson.dumps(delivery.body).decode(), settings.notify_timeout_s
        )
        async with self._sessions.begin() as session:
            if error is None:
                await notify_store.delivered(session, delivery)
                metrics.notification("delivered")
                return
            tries = delivery.attempts + 1
            retry_at = None
            if tries < settings.notify_max_attempts:
                delay = retry_delay(tries - 1, settings.notify_retry_base_s, settings.notify_retry_max_s)
                retry_at = utc_now() + timedelta(seconds=delay)
            await notify_store.failed(session, delivery, error, retry_at)
        metrics.notification("retrying" if retry_at is not None else "given_up")
        # Never the URL: the channel id names it.
        log.warning(
            "notification not delivered",
            extra={
                "channel_id": str(delivery.channel_id),
                "event": delivery.event_key,
                "attempt": tries,
                "gave_up": retry_at is None,
            },
        )
