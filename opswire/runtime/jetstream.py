"""A durable JetStream pull consumer that hands batches to a handler, one batch at a time.

Used by every service that consumes a stream (auth: presence and audit events;
ingest: metrics and logs). The handler decides ack / nak / term per message.
Replicas sharing a durable name split the work; a restarted service resumes
after the last acked message.

Written on nats-py rather than as a FastStream batch subscriber: FastStream 0.7.8's
batch loop lets nats-py 2.16's `asyncio.TimeoutError` escape mid-collection and
restarts, stranding the messages it had already fetched until `ack_wait`. Here a
long-poll `fetch` returns as soon as anything is available (low latency) and
returns up to `batch` messages when more are waiting (throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


@dataclass(frozen=True)
class PullConsumerSpec:
    stream: str
    subject: str
    durable: str
    batch: int = 100
    ack_wait_s: float = 30.0
    # -1: retry until stored; poison messages are terminated by the handler instead.
    max_deliver: int = -1
    max_ack_pending: int = 1000
    fetch_timeout_s: float = 5.0
    retry_after_error_s: float = 1.0


class PullConsumer:
    def __init__(self, spec: PullConsumerSpec, handler: BatchHandler) -> None:
        self._spec = spec
        self._handler = handler
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._fetching = False
        self._stopping = False

    async def start(self, js: JetStreamContext) -> None:
        spec = self._spec
        config = ConsumerConfig(
            durable_name=spec.durable,
            filter_subject=spec.subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_s,
            max_deliver=spec.max_deliver,
            max_ack_pending=spec.max_ack_pending,
        )
        self._sub = await js.pull_subscribe(
            spec.subject, durable=spec.durable, stream=spec.stream, config=config
        )
        self._task = asyncio.create_task(self._run(), name=f"consumer-{spec.durable}")

    async def stop(self) -> None:
        """Finish the batch in hand (so it is acked), then stop; an idle fetch is cancelled."""
        self._stopping = True
        if self._task is not None:
            if self._fetching:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            # Unsubscribe before the connection drains, or a pending fetch can stall the drain.
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _run(self) -> None:
        assert self._sub is not None
        spec = self._spec
        while not self._stopping:
            self._fetching = True
            try:
                messages = await self._sub.fetch(spec.batch, timeout=spec.fetch_timeout_s)
            except (TimeoutError, NatsTimeoutError):
                continue  # nothing new; poll again
            except ConnectionClosedError:
                return
            except Exception:
                # Broker reconnecting, consumer briefly unavailable...: retry shortly.
                log.warning("fetch failed", exc_info=True, extra={"consumer": spec.durable})
                await asyncio.sleep(spec.retry_after_error_s)
                continue
            finally:
                self._fetching = False
            try:
                await self._handler(messages)
            except Exception:
                # Unacked messages come back after ack_wait; keep consuming.
                log.exception("batch handler failed", extra={"consumer": spec.durable})
