"""Reliable JetStream publishing (DESIGN §8): the gateway's accepted frames and every
service's events (alerts, command results), and, awaited, the few events a caller
must see stored before it goes on.

An accepted frame is never lost: it waits in a bounded buffer, is published
with `publish_async` (many in flight at once), and is retried with backoff on
any failure or missing ack, always under the same `Nats-Msg-Id` so the stream
stores it once. When the buffer is full, `submit` says no and the caller tells
the agent; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.js.api import PubAck

from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"


@dataclass(slots=True)
class _Item:
    subject: str
    payload: bytes
    msg_id: str
    attempts: int = 0


class Publisher:
    def __init__(
        self,
        nc: NatsClient,
        capacity: int,
        # Short: a publish to a stream leader that just died is retried (same Nats-Msg-Id)
        # as soon as a new leader can take it, so a lost node costs seconds, not tens.
        ack_timeout_s: float = 2.0,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
    ) -> None:
        # Our own JetStream context so its in-flight limit matches our buffer.
        self._js = nc.jetstream(publish_async_max_pending=capacity)
        self._capacity = capacity
        self._ack_timeout_s = ack_timeout_s
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._queue: deque[_Item] = deque()
        self._pending = 0  # accepted and not yet acked: queued + in flight + waiting to retry
        self._in_flight: dict[asyncio.Future[PubAck], asyncio.TimerHandle] = {}
        self._retries: set[asyncio.TimerHandle] = set()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Many publishes fail together during an outage: one line per interval, and
        # "recovered" once everything pending is stored.
        self._outage = OutageLog(log, "jetstream publish failed; retrying")
        self._closed = False
        self._pump: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._pump = asyncio.create_task(self._run(), name="opswire-publisher")

    def submit(self, subject: str, payload: bytes, msg_id: str, *, force: bool = False) -> bool:
        """Take a message for publishing; False (nothing taken) when the buffer is full.

        `force` is for rare control events (presence) that must not be refused.
        """
        if self._closed or (self._pending >= self._capacity and not force):
            return False
        self._pending += 1
        self._idle.clear()
        self._queue.append(_Item(subject, payload, msg_id))
        self._wakeup.set()
        return True

    async def publish_acked(
        self, subject: str, payload: bytes, msg_id: str, timeout_s: float
    ) -> bool:
        """Publish now and wait until JetStream has stored it, retrying under the same
        Nats-Msg-Id for up to `timeout_s`; False if it was not confirmed in time.

        For the few events the caller must not go past unstored (a command's audit
        entry before the command is dispatched); everything else uses `submit`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        backoff = self._base_backoff_s
        while not self._closed and (left := deadline - loop.time()) > 0:
            try:
                await self._js.publish(subject, payload, timeout=left, headers={MSG_ID: msg_id})
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no stream, no ack in time, refused (full), disconnected
                log.debug("acked publish failed", extra={"subject": subject, "error": repr(exc)})
            await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0.0)))
            backoff = min(backoff * 2, self._max_backoff_s)
        return False

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until everything accepted so far is acked; keep running."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for everything accepted to be acked, then stop."""
        if not await self.flush(timeout_s):
            log.error("publisher stopped with unacked messages", extra={"pending": self._pending})
        self._closed = True
        for future, timer in list(self._in_flight.items()):
            timer.cancel()
            future.cancel()
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue.popleft()
            try:
                future = await self._js.publish_async(
                    item.subject, item.payload, headers={MSG_ID: item.msg_id}
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected with a full buffer, closed, ...
                self._retry_later(item, exc)
                continue
            timer = loop.call_later(self._ack_timeout_s, future.cancel)
            self._in_flight[future] = timer
            future.add_done_callback(functools.partial(self._on_ack, item))

    def _on_ack(self, item: _Item, future: asyncio.Future[PubAck]) -> None:
        timer = self._in_flight.pop(future, None)
        if timer is not None:
            timer.cancel()
        if self._closed:
            return
        if future.cancelled():
            self._retry_later(item, TimeoutError("no ack"))
            return
        if (exc := future.exception()) is not None:
            self._retry_later(item, exc)
            return
        self._pending -= 1
        if self._pending == 0:
            self._outage.recovered()
            self._idle.set()

    def _retry_later(self, item: _Item, exc: BaseException) -> None:
        if self._closed:
            return
        item.attempts += 1
        self._outage.failed(exc, subject=item.subject, pending=self._pending)
        delay = min(self._base_backoff_s * 2 ** (item.attempts - 1), self._max_backoff_s)
        handle: asyncio.TimerHandle

        def requeue() -> None:
            self._retries.discard(handle)
            self._queue.appendleft(item)
            self._wakeup.set()

        handle = asyncio.get_running_loop().call_later(delay, requeue)
        self._retries.add(handle)
