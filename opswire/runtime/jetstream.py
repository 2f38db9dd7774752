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
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._fetching = False
        self._stopping = False

    async def start(self, js: JetStreamContext) -> None:
        self._js = js
        self._sub = await self._bind()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self._spec.durable}")

    async def _bind(self) -> JetStreamContext.PullSubscription:
        """Bind to the durable, creating it if missing (first start, or its stream was recreated)."""
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
        assert self._js is not None, "start() first"
        return await self._js.pull_subscribe(
            spec.subject, durable=spec.durable, stream=spec.stream, config=config
        )

    async def _rebind(self) -> None:
        old, self._sub = self._sub, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()
        self._sub = await self._bind()

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
        spec = self._spec
        failing = False
        while not self._stopping:
            self._fetching = True
            try:
                if self._sub is None:
                    await self._rebind()
                assert self._sub is not None
                messages = await self._sub.fetch(spec.batch, timeout=spec.fetch_timeout_s)
            except (TimeoutError, NatsTimeoutError):
                continue  # nothing new; poll again
            except ConnectionClosedError:
                return
            except Exception as exc:
                # Broker reconnecting, the consumer or its stream gone...: bind again shortly
                # (which recreates the durable). Said once per outage, not once per try.
                if not failing:
                    log.warning(
                        "fetch failed; retrying", extra={"consumer": spec.durable, "error": repr(exc)}
                    )
                failing = True
                self._sub = None
                await asyncio.sleep(spec.retry_after_error_s)
                continue
            finally:
                self._fetching = False
            if failing:
                log.info("fetching again", extra={"consumer": spec.durable})
                failing = False
            try:
                await self._handler(messages)
            except Exception:
                # Unacked messages come back after ack_wait; keep consuming.
                log.exception("batch handler failed", extra={"consumer": spec.durable})
