"""Takeover in seconds (issue 9): two replicas on one durable, on a real nats-server.
A replica that dies holding a batch loses it to the other within ~ack_wait (5 s); one
that is slow but alive keeps it (in-progress acks), so nothing is handled twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.nats import ensure_streams
from tests.helpers.backends import Namespace

MESSAGES = 5


@pytest.fixture
async def replicas(nats_url: str) -> AsyncIterator[tuple[NatsClient, NatsClient]]:
    """Two connections, as two service replicas would have."""
    one, two = await nats.connect(nats_url), await nats.connect(nats_url)
    yield one, two
    for nc in (one, two):
        if not nc.is_closed:
            await nc.close()


async def _publish(nc: NatsClient, namespace: Namespace) -> set[bytes]:
    js = nc.jetstream()
    await ensure_streams(js, namespace.subjects)
    sent = {f"sample-{i}".encode() for i in range(MESSAGES)}
    for data in sorted(sent):
        await js.publish(namespace.subjects.metrics("srv-1"), data)
    return sent


def _spec(namespace: Namespace, **overrides: float) -> PullConsumerSpec:
    return PullConsumerSpec(
        stream=namespace.subjects.metrics_stream,
        subject=namespace.subjects.all_metrics,
        durable="takeover",
        batch=MESSAGES * 2,
        fetch_timeout_s=0.5,
        **overrides,  # type: ignore[arg-type]
    )


async def test_a_dead_replicas_batch_goes_to_the_other_within_seconds(
    nc: NatsClient, namespace: Namespace, replicas: tuple[NatsClient, NatsClient]
) -> None:
    sent = await _publish(nc, namespace)
    spec = _spec(namespace)
    assert spec.ack_wait_s == 5.0  # the default the services use

    first_has_batch = asyncio.Event()
    hung = asyncio.Event()  # never set until clean-up: the first replica stops working

    async def first(batch: Sequence[Msg]) -> None:
        assert {m.data for m in batch} == sent
        first_has_batch.set()
        await hung.wait()

    taken_over: dict[bytes, int] = {}
    second_has_all = asyncio.Event()

    async def second(batch: Sequence[Msg]) -> None:
        for msg in batch:
            taken_over[msg.data] = msg.metadata.num_delivered
            await msg.ack()
        if set(taken_over) == sent:
            second_has_all.set()

    one, two = replicas
    dying = PullConsumer(spec, first)
    await dying.start(one.jetstream())
    await asyncio.wait_for(first_has_batch.wait(), 5)
    fetched_at = time.monotonic()
    survivor = PullConsumer(spec, second)
    await survivor.start(two.jetstream())
    try:
        # The first replica's process dies: its connection goes, no more acks of any kind.
        await one.close()
        died_at = time.monotonic()
        await asyncio.wait_for(second_has_all.wait(), 10)
        since_death = time.monotonic() - died_at
        since_fetch = time.monotonic() - fetched_at
        print(
            f"batch redelivered to the other replica {since_death:.2f} s after the first "
            f"died ({since_fetch:.2f} s after it fetched the batch)"
        )
        assert since_death < 6.0
        assert taken_over == {data: 2 for data in sent}  # the same messages, second delivery
    finally:
        hung.set()
        await survivor.stop()
        await dying.stop()


async def test_a_slow_live_replica_keeps_its_batch(
    nc: NatsClient, namespace: Namespace, replicas: tuple[NatsClient, NatsClient]
) -> None:
    sent = await _publish(nc, namespace)
    spec = _spec(namespace, ack_wait_s=1.5)
    handled: list[tuple[str, bytes, int]] = []
    slow_has_batch, slow_done = asyncio.Event(), asyncio.Event()

    async def slow(batch: Sequence[Msg]) -> None:
        slow_has_batch.set()
        await asyncio.sleep(3 * spec.ack_wait_s)  # the thing under test: a long write
        for msg in batch:
            handled.append(("slow", msg.data, msg.metadata.num_delivered))
            await msg.ack()
        slow_done.set()

    async def other(batch: Sequence[Msg]) -> None:
        for msg in batch:
            handled.append(("other", msg.data, msg.metadata.num_delivered))
            await msg.ack()

    one, two = replicas
    busy = PullConsumer(spec, slow)
    await busy.start(one.jetstream())
    await asyncio.wait_for(slow_has_batch.wait(), 5)
    idle = PullConsumer(spec, other)  # would get the batch if the server redelivered it
    await idle.start(two.jetstream())
    try:
        await asyncio.wait_for(slow_done.wait(), 3 * spec.ack_wait_s + 5)
        await one.flush()
        info = await nc.jetstream().consumer_info(spec.stream, spec.durable)
    finally:
        await busy.stop()
        await idle.stop()
    assert sorted(handled) == sorted(("slow", data, 1) for data in sent)  # each once, by the slow one
    assert info.num_redelivered == 0 and info.num_ack_pending == 0
