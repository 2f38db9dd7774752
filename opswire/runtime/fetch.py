"""Fetching batches from a durable pull consumer by count AND bytes (DESIGN §4 Streams).

nats-py 2.16's `PullSubscription.fetch` takes a count only: 500 frames of ~1 MiB are
half a gigabyte asked for at once, far over nats-server's pending limit for a client,
which then cuts the connection as a slow consumer. Here every pull request carries
`max_bytes` as well, so a batch of big messages is simply a shorter batch.

Messages arrive on one inbox subscription with a callback (no task or timer per
message, unlike `next_msg`); one that arrives after a fetch gave up waiting is kept
for the next fetch, never dropped. A fetch first asks for what is there now
(`no_wait`); only when nothing is, it waits (up to `timeout`) for the first message
with a one-message request, then takes what else is there: low latency when idle,
full batches when behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

# JetStream status headers that end a pull request (no messages, expired, size/limits).
_END_STATUSES = {"404", "408", "409"}
# nats-server counts a message's subject, headers and framing too, not only its data.
_MESSAGE_OVERHEAD = 64 * 1024


class ConsumerGone(Exception):
    """The durable (or its stream) no longer answers pull requests: bind again."""


def _status(msg: Msg) -> str | None:
    if msg.data or not msg.headers:
        return None
    return msg.headers.get("Status")


class BatchFetcher:
    """Pull requests for `stream`/`durable` on one inbox of `nc`."""

    def __init__(self, nc: NatsClient, stream: str, durable: str, max_bytes: int) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        # A message larger than max_bytes could never be fetched: always leave room for one.
        self._max_bytes = max(max_bytes, nc.max_payload + _MESSAGE_OVERHEAD)
        self._buffer: deque[Msg] = deque()
        self._ended = asyncio.Event()
        self._pending = 0
        self._gone = False
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        status = _status(msg)
        if status is None:
            self._buffer.append(msg)
            self._pending -= 1
            if self._pending <= 0:  # a request filled exactly gets no status after it
                self._ended.set()
        elif status == "503" or (status == "409" and "deleted" in self._description(msg)):
            self._gone = True
            self._ended.set()
        elif status in _END_STATUSES:
            self._ended.set()
        # 100 (idle heartbeat) and anything else: nothing to do.

    @staticmethod
    def _description(msg: Msg) -> str:
        return (msg.headers or {}).get("Description", "").lower()

    async def _ask(self, batch: int, wait_s: float | None, timeout_s: float) -> None:
        """One pull request (`no_wait` unless `wait_s`), awaited until it ends."""
        self._ended.clear()
        self._pending = batch
        request: dict[str, object] = {"batch": batch, "max_bytes": self._max_bytes}
        if wait_s is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(wait_s * 1e9)
        await self._nc.publish(self._next_subject, orjson.dumps(request), reply=self._inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), timeout_s)

    async def fetch(self, batch: int, timeout_s: float) -> list[Msg]:
        """Up to `batch` messages and about `max_bytes`; [] when none came within `timeout_s`.
        Raises ConsumerGone when the durable or its stream is not there any more."""
        if not self._buffer:
            await self._ask(batch, None, timeout_s)
        if not self._buffer and not self._gone:
            await self._ask(1, timeout_s, timeout_s + 0.5)
            if self._buffer and batch > 1:
                await self._ask(batch - len(self._buffer), None, timeout_s)
        if self._gone and not self._buffer:
            raise ConsumerGone(self._next_subject)
        return self._take(batch)

    def _take(self, batch: int) -> list[Msg]:
        taken: list[Msg] = []
        size = 0
        while self._buffer and len(taken) < batch:
            msg = self._buffer[0]
            if taken and size + len(msg.data) > self._max_bytes:
                break
            taken.append(self._buffer.popleft())
            size += len(msg.data)
        return taken
