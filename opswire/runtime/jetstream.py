"""A durable JetStream pull consumer that hands batches to a handler, one batch at a time.

Used by every service that consumes a stream (auth: presence and audit events;
ingest: metrics and logs). The handler decides ack / nak / term per message.
Replicas sharing a durable name split the work; a restarted service resumes
after the last acked message.

Written on nats-py rather than as a FastStream batch subscriber: FastStream 0.7.8's
batch loop lets nats-py 2.16's `asyncio.TimeoutError` escape mid-collection and
restarts, stranding the messages it had already fetched until `ack_wait`. Batches
come from `fetch.BatchFetcher`: as soon as anything is available (low latency), up to
`batch` messages and `max_bytes` when more are waiting (throughput, and never more
than a client may have pending).

Pipelining (`pipeline` > 1): the next batch is fetched while the previous one is still
being handled, up to `pipeline` handlers at once; a handler that must store in order
serialises its commit itself (ingest's BatchWriter does), and acks stay its decision.

Takeover: `ack_wait` is short (5 s), so the batch of a replica that died comes back
to another replica within about that. A live handler that takes longer keeps its
batch: every `ack_wait / 2` while it runs, the batch's messages not yet acked get an
in-progress ack (`+WPI`), which restarts their `ack_wait` on the server.
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
from nats.js.errors import NotFoundError

from opswire.runtime import metrics
from opswire.runtime.fetch import BatchFetcher
from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


@dataclass(frozen=True)
class PullConsumerSpec:
    stream: str
    subject: str
    durable: str
    batch: int = 100
    # A dead consumer's batch is redelivered this long after its last (progress) ack.
    ack_wait_s: float = 5.0
    # -1: retry until stored; poison messages are terminated by the handler instead.
    max_deliver: int = -1
    max_ack_pending: int = 1000
    fetch_timeout_s: float = 5.0
    retry_after_error_s: float = 1.0
    # Copies of the consumer's state (OPSWIRE_STREAM_REPLICAS), like its stream's.
    replicas: int = 1
    # A batch is at most this many bytes (at least one message of any allowed size).
    max_bytes: int = 8 * 1024 * 1024
    # Batches handled at once: 1 handles each before fetching the next.
    pipeline: int = 1

    @property
    def progress_every_s(self) -> float:
        """How often a batch still being handled is reported in progress."""
        return self.ack_wait_s / 2


class PullConsumer:
    def __init__(self, spec: PullConsumerSpec, handler: BatchHandler) -> None:
        self._spec = spec
        self._handler = handler
        self._js: JetStreamContext | None = None
        self._sub: BatchFetcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._fetching = False
        self._stopping = False
        # A lost node or a reconnect fails every fetch for a while: one line per interval.
        self._fetch_outage = OutageLog(log, f"{spec.durable}: fetch failed, retrying")

    async def start(self, js: JetStreamContext) -> None:
        self._js = js
        self._sub = await self._bind()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self._spec.durable}")

    async def _bind(self) -> BatchFetcher:
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
            num_replicas=spec.replicas,
        )
        assert self._js is not None, "start() first"
        await self._ensure_durable(config)
        # The context's own connection: the consumer pulls on an inbox of that identity.
        fetcher = BatchFetcher(self._js._nc, spec.stream, spec.durable, spec.max_bytes)
        await fetcher.start()
        return fetcher

    async def _ensure_durable(self, config: ConsumerConfig) -> None:
        """Create the durable if missing; give one made by an older version (ack_wait
        30 s, one replica) this spec's ack_wait and replicas."""
        assert self._js is not None
        spec = self._spec
        try:
            info = await self._js.consumer_info(spec.stream, spec.durable)
        except NotFoundError:
            await self._js.add_consumer(spec.stream, config)
            return
        current = info.config
        stale_wait = abs((current.ack_wait or 0) - spec.ack_wait_s) > 0.001
        if stale_wait or (current.num_replicas or 1) != spec.replicas:
            await self._js.add_consumer(spec.stream, config)  # same name: an update
            log.info(
                "consumer updated",
                extra={"consumer": spec.durable, "ack_wait_s": spec.ack_wait_s, "replicas": spec.replicas},
            )

    async def _rebind(self) -> None:
        old, self._sub = self._sub, None
        if old is not None:
            await old.stop()
        self._sub = await self._bind()

    async def stop(self) -> None:
        """Finish the batches in hand (so they are acked), then stop; an idle fetch is cancelled."""
        self._stopping = True
        if self._task is not None:
            if self._fetching:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._handling:
            await asyncio.wait(self._handling)
        if self._sub is not None:
            # Unsubscribe before the connection drains, or a pending fetch can stall the drain.
            await self._sub.stop()
            self._sub = None

    async def _run(self) -> None:
        spec = self._spec
        while not self._stopping:
            self._fetching = True
            try:
                if self._sub is None:
                    await self._rebind()
                assert self._sub is not None
                messages = await self._sub.fetch(spec.batch, spec.fetch_timeout_s)
            except (TimeoutError, NatsTimeoutError):
                continue  # nothing new; poll again
            except ConnectionClosedError:
                return
            except Exception as exc:
                # Broker reconnecting, the consumer or its stream gone...: bind again shortly
                # (which recreates the durable).
                self._fetch_outage.failed(exc, consumer=spec.durable)
                self._sub = None
                await asyncio.sleep(spec.retry_after_error_s)
                continue
            finally:
                self._fetching = False
            if not messages:
                continue  # nothing new; poll again
            self._fetch_outage.recovered(consumer=spec.durable)
            metrics.consumer_lag(spec.durable, messages[-1].metadata.num_pending)
            while len(self._handling) >= spec.pipeline:
                await asyncio.wait(self._handling, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._handle_logged(messages))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _handle_logged(self, messages: Sequence[Msg]) -> None:
        try:
            await self._handle(messages)
        except Exception:
            # Unacked messages come back after ack_wait; keep consuming.
            log.exception("batch handler failed", extra={"consumer": self._spec.durable})

    async def _handle(self, messages: Sequence[Msg]) -> None:
        """Run the handler; while it runs, report the batch in progress every
        `ack_wait / 2` so the server does not hand it to another replica."""
        handling = asyncio.ensure_future(self._handler(messages))
        try:
            while True:
                done, _ = await asyncio.wait({handling}, timeout=self._spec.progress_every_s)
                if done:
                    break
                await self._in_progress(messages)
        except asyncio.CancelledError:
            handling.cancel()
            raise
        handling.result()  # the handler's exception, if any

    async def _in_progress(self, messages: Sequence[Msg]) -> None:
        for msg in messages:
            if msg.is_acked:  # acked, naked or terminated by the handler already
                continue
            try:
                await msg.in_progress()
            except Exception:
                # Connection away: nothing to tell; after ack_wait the batch goes elsewhere.
                return
