"""Reliable JetStream publishing (DESIGN §8): the gateway's accepted frames and every
service's events (alerts, command results), and, awaited, the few events a caller
must see stored before it goes on.

An accepted frame is never lost: it waits in a bounded buffer, is published as a
plain NATS message whose reply subject is one token under this publisher's own
ack inbox (one subscription takes every JetStream ack), and is republished with
backoff on any failure, missing ack or NATS reconnect, always under the same
`Nats-Msg-Id` so the stream stores it once.

A missing ack counts only while JetStream answers nothing: as long as answers keep
coming, a backlog is being worked through and re-sending it would only multiply it
(measured under a flood: 920k publishes for 164k samples). A message unanswered for
`STUCK_AFTER` ack timeouts is re-sent even then (its stream's leader may be gone while
another stream's is fine). Per message there is no future, no
timer and no semaphore: one pump writes whatever is queued in a batch, one ticker
times out unanswered messages and schedules retries.

When the buffer is full, `submit` says no and the caller tells the agent. A
connection's messages can also be limited to its `Share` of the buffer, so one
flooding agent cannot fill it for everyone. A stream that refuses a message
because it is full (`discard: new` at `max_bytes`/`max_msgs`) is reported to the
message's share, whose owner tells the agent; messages without a share (service
events) are retried until the stream takes them. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
# A message unanswered this many ack timeouts is re-sent though other answers come.
STUCK_AFTER = 5
STATUS = "Status"
NO_RESPONDERS = "503"
# JetStream's words when a `discard: new` stream is at its limits.
_FULL_MARKERS = ("maximum bytes", "maximum messages")
STORAGE_FULL = "storage_full"


class Share:
    """One producer's (an agent connection's) part of the publish buffer.

    `refused` is called with the reason when the stream refused one of its
    messages for good (the stream is full); it runs on the event loop and must
    not block.
    """

    __slots__ = ("_publisher", "pending", "refused")

    def __init__(self, publisher: Publisher, refused: Callable[[str], None]) -> None:
        self.pending = 0
        self.refused = refused
        self._publisher = publisher

    def close(self) -> None:
        """The producer is gone; messages it had accepted are still published."""
        self._publisher._shares -= 1


@dataclass(slots=True)
class _Item:
    subject: str
    payload: bytes
    headers: dict[str, str]
    token: str
    share: Share | None
    attempts: int = 0
    sent_at: float = 0.0


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
        min_share: int = 64,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._capacity = capacity
        self._min_share = min_share
        self._ack_timeout_s = ack_timeout_s
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._queue: deque[_Item] = deque()
        # Sent and not yet answered, in the order sent (so the oldest time out first).
        self._in_flight: dict[str, _Item] = {}
        self._retries: list[tuple[float, int, _Item]] = []  # (due, tie-break, item)
        self._pending = 0  # accepted and not yet acked: queued + in flight + waiting to retry
        self._shares = 0
        self._tokens = itertools.count()
        self._inbox = ""
        self._sub: Subscription | None = None
        self._reconnects = 0
        self._last_answer_at = 0.0  # loop time of JetStream's latest answer to anything
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Many publishes fail together during an outage: one line per interval, and
        # "recovered" once everything pending is stored.
        self._outage = OutageLog(log, "jetstream publish failed; retrying")
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._pump(), name="opswire-publisher"),
            asyncio.create_task(self._tick(), name="opswire-publisher-acks"),
        ]

    def share(self, refused: Callable[[str], None]) -> Share:
        """A new producer's share of the buffer; `close()` it when the producer leaves."""
        self._shares += 1
        return Share(self, refused)

    def share_limit(self) -> int:
        """What one share may hold: an equal part of the buffer, never less than `min_share`."""
        return min(self._capacity, max(self._min_share, self._capacity // max(self._shares, 1)))

    def submit(
        self, subject: str, payload: bytes, msg_id: str, *, force: bool = False, share: Share | None = None
    ) -> bool:
        """Take a message for publishing; False (nothing taken) when the buffer, or the
        share's part of it, is full.

        `force` is for rare control events (presence) that must not be refused.
        """
        if self._closed:
            return False
        if not force and (
            self._pending >= self._capacity or (share is not None and share.pending >= self.share_limit())
        ):
            return False
        self._pending += 1
        if share is not None:
            share.pending += 1
        self._idle.clear()
        token = format(next(self._tokens), "x")
        self._queue.append(_Item(subject, payload, {MSG_ID: msg_id}, token, share))
        self._wakeup.set()
        return True

    async def publish_acked(self, subject: str, payload: bytes, msg_id: str, timeout_s: float) -> bool:
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # connection closing: the server forgets it anyway
                log.debug("ack subscription not removed", extra={"error": repr(exc)})

    # --- the pump: queued messages out, in batches ---------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._sub is None:
                if not await self._subscribe():
                    await asyncio.sleep(self._base_backoff_s)
                    continue
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = loop.time()
            # Everything queued goes out before the socket is written: one flush per batch.
            while self._queue:
                item = self._queue.popleft()
                try:
                    await self._nc.publish(
                        item.subject, item.payload, reply=f"{self._inbox}.{item.token}", headers=item.headers
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # disconnected with a full buffer, closed, ...
                    self._retry_later(item, exc, now)
                    continue
                item.sent_at = now
                self._in_flight[item.token] = item

    async def _subscribe(self) -> bool:
        inbox = self._nc.new_inbox()
        try:
            self._sub = await self._nc.subscribe(f"{inbox}.*", cb=self._on_ack)
        except Exception as exc:  # NATS away at start-up: try again shortly
            log.debug("ack subscription not made", extra={"error": repr(exc)})
            return False
        self._inbox = inbox
        self._reconnects = self._nc.stats["reconnects"]
        return True

    # --- answers --------------------------------------------------------------------------------

    async def _on_ack(self, msg: Msg) -> None:
        now = asyncio.get_running_loop().time()
        self._last_answer_at = now
        item = self._in_flight.pop(msg.subject[len(self._inbox) + 1 :], None)
        if item is None or self._closed:
            return  # a late answer to a message already retried and answered
        if msg.headers and msg.headers.get(STATUS) == NO_RESPONDERS:
            self._retry_later(item, RuntimeError("no stream for the subject"), now)
            return
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            self._retry_later(item, RuntimeError("malformed ack"), now)
            return
        error = answer.get("error") if isinstance(answer, dict) else "not an ack"
        if error is None:
            self._done(item)
            return
        description = str(error.get("description", error) if isinstance(error, dict) else error)
        if item.share is not None and any(marker in description for marker in _FULL_MARKERS):
            self._done(item)
            item.share.refused(STORAGE_FULL)
            return
        self._retry_later(item, RuntimeError(description), now)

    def _done(self, item: _Item) -> None:
        self._pending -= 1
        if item.share is not None:
            item.share.pending -= 1
        if self._pending == 0:
            self._outage.recovered()
            self._idle.set()

    # --- the ticker: timeouts, reconnects, retries ------------------------------------------------

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        period = min(self._ack_timeout_s / 4, 0.25)
        while True:
            await asyncio.sleep(period)
            self._expire(loop.time())

    def _expire(self, now: float) -> None:
        reconnects = self._nc.stats["reconnects"]
        if reconnects != self._reconnects:
            # Messages sent before the reconnect may never be answered: send them again now.
            self._reconnects = reconnects
            lost = list(self._in_flight.values())
            self._in_flight.clear()
            self._queue.extendleft(reversed(lost))
        else:
            cutoff = now - self._ack_timeout_s
            if self._last_answer_at > cutoff:  # JetStream is answering: only the stuck time out
                cutoff = now - STUCK_AFTER * self._ack_timeout_s
            while self._in_flight:
                token, item = next(iter(self._in_flight.items()))
                if item.sent_at > cutoff:
                    break
                del self._in_flight[token]
                self._retry_later(item, TimeoutError("no ack"), now)
        while self._retries and self._retries[0][0] <= now:
            self._queue.append(heapq.heappop(self._retries)[2])
        if self._queue:
            self._wakeup.set()

    def _retry_later(self, item: _Item, exc: BaseException, now: float) -> None:
        if self._closed:
            return
        item.attempts += 1
        self._outage.failed(exc, subject=item.subject, pending=self._pending)
        delay = min(self._base_backoff_s * 2 ** (item.attempts - 1), self._max_backoff_s)
        heapq.heappush(self._retries, (now + delay, next(self._tokens), item))
