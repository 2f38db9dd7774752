"""Durable JetStream pull consumers feeding batches to a handler.

The handler decides ack / nak / term per message (see `ingest.writer`). The
consumer is durable and shared: replicas of ingest pulling from the same
durable name split the work, and a restarted service resumes where the last
acked message left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import MsgAlreadyAckdError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Msg]], Awaitable[None]]


@dataclass(frozen=True)
class Batching:
    batch_size: int
    batch_timeout_s: float
    ack_wait_s: float


class BatchConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        subject: str,
        durable: str,
        handler: BatchHandler,
        batching: Batching,
    ) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject
        self._durable = durable
        self._handler = handler
        self._batch_size = batching.batch_size
        self._batch_timeout_s = batching.batch_timeout_s
        self._ack_wait_s = batching.ack_wait_s
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=self._durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait_s,
            # Unlimited: a message that can never be stored is terminated by the handler,
            # so only a database outage makes messages come back, and those must not be dropped.
            max_deliver=-1,
            max_ack_pending=self._batch_size * 4,
            filter_subject=self._subject,
        )
        self._sub = await self._js.pull_subscribe(
            self._subject, durable=self._durable, stream=self._stream, config=config
        )
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self._durable}")
        log.info(
            "consumer %s started",
            self._durable,
            extra={"consumer": self._durable, "stream": self._stream},
        )

    async def stop(self) -> None:
        """Finish the batch in hand (the fetch wait is short), then unsubscribe."""
        self._stopping = True
        if self._task is not None:
            await self._task
        if self._sub is not None:
            # Unsubscribe before the connection drains: drain can hang on an expired pull.
            await self._sub.unsubscribe()
            self._sub = None

    async def _run(self) -> None:
        assert self._sub is not None
        while not self._stopping:
            try:
                msgs = await self._sub.fetch(self._batch_size, timeout=self._batch_timeout_s)
            except (NatsTimeoutError, TimeoutError):
                continue
            except Exception as exc:
                # Disconnected or the consumer is gone for a moment: retry, never exit.
                log.warning(
                    "%s: fetch failed: %r",
                    self._durable,
                    exc,
                    extra={"consumer": self._durable, "error": repr(exc)},
                )
                await asyncio.sleep(self._batch_timeout_s)
                continue
            try:
                await self._handler(msgs)
            except Exception:
                log.exception("batch handler failed", extra={"consumer": self._durable})
                for msg in msgs:
                    with contextlib.suppress(MsgAlreadyAckdError):
                        await msg.nak(delay=self._ack_wait_s)
