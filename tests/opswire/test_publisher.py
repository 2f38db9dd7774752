"""The batching JetStream publisher against a real nats-server: acked once, retried, fair, told."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, StreamConfig

from opswire.runtime.publisher import STORAGE_FULL, Publisher, Share
from tests.helpers.backends import SecuredNats
from tests.helpers.client import eventually


@pytest.fixture
async def stream(nc: NatsClient) -> AsyncIterator[str]:
    """A fresh stream on `<name>.>`; yields its name (also its subject prefix)."""
    name = f"PUBTEST_{uuid.uuid4().hex[:12]}"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    yield name
    await js.delete_stream(name)


async def _count(nc: NatsClient, name: str) -> int:
    return (await nc.jetstream().stream_info(name)).state.messages


async def test_every_message_stored_once_even_when_submitted_twice(nc: NatsClient, stream: str) -> None:
    publisher = Publisher(nc, capacity=2_000)
    publisher.start()
    try:
        for round_ in range(2):  # the second round repeats every Nats-Msg-Id: the stream keeps one
            for i in range(500):
                assert publisher.submit(f"{stream}.s", f"{i}".encode(), f"id-{i}")
            assert await publisher.flush(10), f"round {round_} not acked"
        assert publisher.pending == 0
    finally:
        await publisher.stop()
    assert await _count(nc, stream) == 500


async def test_a_full_stream_is_told_to_the_share_and_frees_the_buffer(nc: NatsClient) -> None:
    name = f"PUBFULL_{uuid.uuid4().hex[:12]}"
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name=name, subjects=[f"{name}.>"], max_msgs=2, discard=DiscardPolicy.NEW)
    )
    refusals: list[str] = []
    publisher = Publisher(nc, capacity=100)
    publisher.start()
    try:
        share = publisher.share(refusals.append)
        for i in range(3):
            assert publisher.submit(f"{name}.s", b"x", f"id-{i}", share=share)
        assert await publisher.flush(10)
        assert (refusals, share.pending, publisher.pending) == ([STORAGE_FULL], 0, 0)
        assert await _count(nc, name) == 2
    finally:
        await publisher.stop()
        await js.delete_stream(name)


async def test_one_share_cannot_take_the_whole_buffer(nc: NatsClient, stream: str) -> None:
    # No stream listens on this subject: nothing is ever acked, so accepted messages stay pending.
    unheard = f"nostream_{uuid.uuid4().hex}.s"
    publisher = Publisher(nc, capacity=100, min_share=5)
    publisher.start()
    try:
        flood, honest = publisher.share(lambda _: None), publisher.share(lambda _: None)
        assert publisher.share_limit() == 50
        accepted = sum(publisher.submit(unheard, b"x", f"f-{i}", share=flood) for i in range(200))
        assert accepted == 50
        assert publisher.submit(f"{stream}.s", b"honest", "h-1", share=honest)
        await eventually(_drained(honest))
        assert flood.pending == 50  # still held (retried), never dropped
        honest.close()
        assert publisher.share_limit() == 100
    finally:
        await publisher.stop(timeout_s=0.1)  # the flood can never be acked: do not wait for it
    assert await _count(nc, stream) == 1


def _drained(share: Share) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return share.pending == 0

    return check


async def test_messages_accepted_during_an_outage_are_stored_once_after_it(tmp_path: Path) -> None:
    server = SecuredNats(tmp_path / "nats")
    server.start()
    nc = await nats.connect(server.admin_url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    name = f"PUBOUT_{uuid.uuid4().hex[:12]}"
    publisher = Publisher(nc, capacity=1_000, ack_timeout_s=1.0)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        publisher.start()
        for i in range(100):
            assert publisher.submit(f"{name}.s", b"before", f"b-{i}")
        assert await publisher.flush(10)
        server.stop()
        for i in range(100):
            assert publisher.submit(f"{name}.s", b"during", f"d-{i}")
        server.start()
        assert await publisher.flush(30)
        assert await _count(nc, name) == 200
    finally:
        await publisher.stop()
        await nc.close()
        server.stop()


async def test_a_slow_answer_is_waited_for_while_answers_keep_coming(nc: NatsClient) -> None:
    """A backlog JetStream is working through is not re-sent (that only multiplies it);
    a message nobody answers at all is (test below)."""
    prefix = f"slowack{uuid.uuid4().hex[:8]}"
    received: list[str] = []

    async def slow(msg: Msg) -> None:  # answers each message 0.6 s late: 3 ack timeouts
        received.append(msg.headers["Nats-Msg-Id"] if msg.headers else "")
        await asyncio.sleep(0.6)
        await msg.respond(orjson.dumps({"stream": "S", "seq": len(received)}))

    async def fast(msg: Msg) -> None:
        await msg.respond(orjson.dumps({"stream": "F", "seq": 1}))

    subs = [
        await nc.subscribe(f"{prefix}.slow", cb=slow),
        await nc.subscribe(f"{prefix}.fast", cb=fast),
    ]
    await nc.flush()
    publisher = Publisher(nc, capacity=100, ack_timeout_s=0.2)
    publisher.start()
    try:
        assert publisher.submit(f"{prefix}.slow", b"x", "slow-1")
        while "slow-1" not in received or publisher.pending > 0:
            # Other answers keep coming while the slow one is outstanding.
            assert publisher.submit(f"{prefix}.fast", b"y", uuid.uuid4().hex)
            await asyncio.sleep(0.05)
    finally:
        await publisher.stop()
        for sub in subs:
            await sub.unsubscribe()
    assert received == ["slow-1"], "sent once, though its answer took three ack timeouts"


async def test_a_message_nobody_answers_is_sent_again(nc: NatsClient) -> None:
    prefix = f"noack{uuid.uuid4().hex[:8]}"
    received: list[str] = []

    async def silent(msg: Msg) -> None:
        received.append(msg.headers["Nats-Msg-Id"] if msg.headers else "")
        if len(received) == 3:
            await msg.respond(orjson.dumps({"stream": "S", "seq": 1}))

    sub = await nc.subscribe(f"{prefix}.silent", cb=silent)
    await nc.flush()
    publisher = Publisher(nc, capacity=10, ack_timeout_s=0.2, max_backoff_s=0.1)
    publisher.start()
    try:
        assert publisher.submit(f"{prefix}.silent", b"x", "lonely")
        assert await publisher.flush(10)
    finally:
        await publisher.stop()
        await sub.unsubscribe()
    assert received == ["lonely"] * 3, "re-sent under the same Nats-Msg-Id until answered"
