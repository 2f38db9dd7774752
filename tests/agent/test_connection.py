"""Connection logic against a real local WebSocket server (tests/agent/fake_gateway.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from agent.buffer import Outbox
from agent.connection import AgentConnection, Backoff, ConnectionOptions
from opswire.contract.frames import (
    CommandFrame,
    CommandResponse,
    DockerCommandFrame,
    ErrorFrame,
    LogFrame,
    MetricsFrame,
    encode,
)
from opswire.contract.types import utc_now
from opswire.launcher.embedded import free_port
from tests.agent.fake_gateway import GOOD_KEY, FakeGateway


class Pauses:
    """The connection's sleep: records each delay and waits until the test releases it."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, delay: float) -> None:
        await self.asked.put(delay)
        await self._go.get()

    async def next(self) -> float:
        async with asyncio.timeout(5):
            return await self.asked.get()

    def release(self) -> None:
        self._go.put_nowait(None)


class Harness:
    def __init__(self, url: str, **options: Any) -> None:
        self.outbox = Outbox(metrics_capacity=100, logs_capacity=100, resend_window_s=60)
        self.pauses = Pauses()
        self.dispatched: list[CommandFrame | DockerCommandFrame] = []
        values: dict[str, Any] = {"ws_urls": (url,), "api_key": GOOD_KEY, "stable_after_s": 1000}
        values.update(options)
        self.connection = AgentConnection(
            ConnectionOptions(**values),
            self.outbox,
            self.dispatched.append,
            Backoff(1.0, 60.0, rng=lambda: 1.0),  # no jitter: delays are exactly 1, 2, 4...
            sleep=self.pauses,
        )


@asynccontextmanager
async def running(url: str, **options: Any) -> AsyncIterator[Harness]:
    harness = Harness(url, **options)
    task = asyncio.create_task(harness.connection.run())
    try:
        yield harness
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def sample(seconds_ago: float) -> MetricsFrame:
    return MetricsFrame(
        type="metrics", cpu_percent=5, memory_percent=6, disk_usage=[], network=[],
        timestamp=utc_now() - timedelta(seconds=seconds_ago),
    )  # fmt: skip


async def frames_of(gw: FakeGateway, count: int) -> list[tuple[int, Any]]:
    return [await gw.next_frame() for _ in range(count)]


async def test_authenticates_first_and_sends_the_outbox() -> None:
    async with FakeGateway() as gw, running(gw.url) as h:
        accepted = await gw.next_connection()
        assert gw.keys_seen == [GOOD_KEY]
        async with asyncio.timeout(5):
            await h.connection.online.wait()
        assert h.connection.server_id == gw.server_id
        h.outbox.put_metrics(sample(0))
        number, frame = await gw.next_frame()
        assert (number, frame.type) == (accepted.number, "metrics")


async def test_reconnects_with_backoff_and_resends_with_original_timestamps() -> None:
    async with FakeGateway() as gw, running(gw.url) as h:
        first = await gw.next_connection()
        sent = [sample(60), sample(55)]
        for frame in sent:
            h.outbox.put_metrics(frame)
        assert [f for _, f in await frames_of(gw, 2)] == sent

        await first.ws.close(1001, "gateway restarting")
        assert await h.pauses.next() == 1.0
        buffered = sample(50)  # taken while disconnected
        h.outbox.put_metrics(buffered)
        h.outbox.put_log(LogFrame(type="log", level="error", message="offline", timestamp=utc_now()))
        h.pauses.release()

        second = await gw.next_connection()
        received = await frames_of(gw, 4)
        assert {number for number, _ in received} == {second.number}
        metrics = [f for _, f in received if f.type == "metrics"]
        # The two sent just before the drop come again (stored once by the server), then the new.
        assert [m.timestamp for m in metrics] == [f.timestamp for f in [*sent, buffered]]
        assert [f.message for _, f in received if f.type == "log"] == ["offline"]

        await second.ws.close(1001)
        assert await h.pauses.next() == 2.0  # the connection was not stable: keep doubling


async def test_backoff_resets_after_a_stable_connection() -> None:
    # Every connection counts as stable at once, so no time has to pass (no sleep).
    async with FakeGateway() as gw, running(gw.url, stable_after_s=0) as h:
        for _ in range(2):
            accepted = await gw.next_connection()
            await accepted.ws.close(1001)
            assert await h.pauses.next() == 1.0
            h.pauses.release()


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    assert [Backoff(1, 60, rng=lambda: 1.0).next() for _ in range(1)] == [1.0]
    backoff = Backoff(1, 60, rng=lambda: 1.0)
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next() == 1
    jittered = Backoff(8, 60, rng=lambda: 0.0)
    assert jittered.next() == 4  # half fixed, half random


async def test_rejected_key_is_reported_and_retried_slowly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    async with (
        FakeGateway(valid_key="a-different-key") as gw,
        running(gw.url, rejected_retry_s=60) as h,
    ):
        assert await h.pauses.next() == 60
        h.pauses.release()
        assert await h.pauses.next() == 60  # no growth, no hot loop
        assert gw.attempts == 2
    assert "API key rejected" in caplog.text
    assert GOOD_KEY not in caplog.text


async def test_revoked_key_close_1008_is_retried_slowly() -> None:
    async with FakeGateway() as gw, running(gw.url, rejected_retry_s=60) as h:
        accepted = await gw.next_connection()
        await accepted.ws.close(1008, "API key revoked")
        assert await h.pauses.next() == 60


async def test_a_policy_close_that_is_not_about_the_key_backs_off_normally() -> None:
    async with FakeGateway() as gw, running(gw.url, rejected_retry_s=60) as h:
        accepted = await gw.next_connection()
        idle = ErrorFrame(code="idle_timeout", message="Idle timeout: no frames received")
        await accepted.ws.send(encode(idle))
        await accepted.ws.close(1008)
        assert await h.pauses.next() == 1.0


async def test_the_error_code_decides_a_key_was_rejected_not_the_words() -> None:
    async with FakeGateway() as gw, running(gw.url, rejected_retry_s=60) as h:
        accepted = await gw.next_connection()
        await accepted.ws.send(encode(ErrorFrame(code="invalid_key", message="Server deleted")))
        assert await h.pauses.next() == 60
        h.pauses.release()
        accepted = await gw.next_connection()
        wordy = ErrorFrame(code="invalid_format", message="Invalid message format", detail="api_key revoked")
        await accepted.ws.send(encode(wordy))
        await accepted.ws.close(1008)
        assert await h.pauses.next() == 1.0


async def test_keepalive_pings_keep_an_idle_connection_busy() -> None:
    async with FakeGateway() as gw, running(gw.url, keepalive_s=0.05) as h:
        await gw.next_connection()
        _, frame = await gw.next_frame()
        assert frame.type == "ping"  # nothing else was queued
        h.outbox.put_metrics(sample(0))
        assert (await gw.next_frame("metrics"))[1].type == "metrics"


async def test_replaced_connection_4000_is_logged_and_backed_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    async with FakeGateway() as gw, running(gw.url) as h:
        accepted = await gw.next_connection()
        await accepted.ws.close(4000, "replaced")
        assert await h.pauses.next() == 1.0
    assert "replaced by a newer one" in caplog.text


async def test_unreachable_gateway_backs_off() -> None:
    async with running(f"ws://127.0.0.1:{free_port()}") as h:  # nobody listens there
        assert await h.pauses.next() == 1.0
        h.pauses.release()
        assert await h.pauses.next() == 2.0


async def test_heartbeat_notices_a_dead_connection() -> None:
    async with (
        FakeGateway() as gw,
        running(gw.url, ping_interval_s=0.1, ping_timeout_s=0.2, close_timeout_s=0.2) as h,
    ):
        first = await gw.next_connection()
        first.ws.transport.pause_reading()  # the peer stops answering pings, TCP stays up
        async with asyncio.timeout(3):
            await h.pauses.next()
        h.pauses.release()
        await gw.next_connection()
        first.ws.transport.resume_reading()  # let the server side notice and finish


async def test_gateway_frames_are_dispatched_and_bad_ones_answered() -> None:
    async with FakeGateway() as gw, running(gw.url) as h:
        accepted = await gw.next_connection()
        await accepted.ws.send('{"type":"command","command_id":"bad-1","command":"x","timeout_s":0}')
        await accepted.ws.send("not json at all")
        await accepted.ws.send('{"type":"something_new"}')
        good = CommandFrame(command_id="good-1", command="uptime")
        await accepted.ws.send(encode(good))
        _, reply = await gw.next_frame("command_response")
        assert isinstance(reply, CommandResponse)
        assert (reply.command_id, reply.exit_code) == ("bad-1", 2)
        assert "timeout_s" in reply.output
        await wait_for(lambda: h.dispatched == [good])


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - nothing to await: dispatch is a plain callback
            await asyncio.sleep(0.01)


async def test_fails_over_round_robin_between_gateways() -> None:
    async with FakeGateway() as first, FakeGateway() as second:
        async with running(first.url, ws_urls=(first.url, second.url)) as h:
            on_first = await first.next_connection()
            await on_first.ws.close(1001, "gateway going away")
            assert await h.pauses.next() == 1.0  # the same backoff as with one gateway
            h.pauses.release()
            on_second = await second.next_connection()
            h.outbox.put_metrics(sample(1))
            assert (await second.next_frame())[0] == on_second.number
            await on_second.ws.close(1001)
            assert await h.pauses.next() == 2.0
            h.pauses.release()
            await first.next_connection()  # round-robin: back to the first one


async def test_an_unreachable_gateway_is_skipped() -> None:
    dead = f"ws://127.0.0.1:{free_port()}/api/v1/agents/ws"
    async with FakeGateway() as gw, running(dead, ws_urls=(dead, gw.url)) as h:
        assert await h.pauses.next() == 1.0
        h.pauses.release()
        await gw.next_connection()
        await asyncio.wait_for(h.connection.online.wait(), 5)
        assert h.connection.ws_url == dead  # after a loss it would try the first one again
