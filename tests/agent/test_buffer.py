from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.buffer import Outbox
from opswire.contract.frames import CommandResponse, LogFrame, MetricsFrame

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sample(second: int) -> MetricsFrame:
    return MetricsFrame(
        type="metrics", cpu_percent=1, memory_percent=2, disk_usage=[], network=[],
        timestamp=T0 + timedelta(seconds=second),
    )  # fmt: skip


def line(text: str) -> LogFrame:
    return LogFrame(type="log", level="info", message=text, timestamp=T0)


async def drain(outbox: Outbox) -> list[object]:
    return [await outbox.next() for _ in range(len(outbox))]


async def test_replies_first_then_samples_then_logs() -> None:
    outbox = Outbox(metrics_capacity=10, logs_capacity=10)
    outbox.put_log(line("l"))
    outbox.put_metrics(sample(1))
    reply = CommandResponse(type="command_response", command_id="c", output="", duration_ms=0)
    outbox.put_reply(reply)
    assert await drain(outbox) == [reply, sample(1), line("l")]


async def test_bounded_buffer_drops_the_oldest_and_counts() -> None:
    outbox = Outbox(metrics_capacity=3, logs_capacity=2)
    for second in range(5):
        outbox.put_metrics(sample(second))
        outbox.put_log(line(str(second)))
    assert (outbox.metrics.dropped, outbox.logs.dropped) == (2, 3)
    frames = await drain(outbox)
    assert frames == [sample(2), sample(3), sample(4), line("3"), line("4")]


async def test_frames_sent_within_the_window_are_requeued_in_order() -> None:
    clock = Clock()
    outbox = Outbox(metrics_capacity=10, logs_capacity=10, resend_window_s=5, clock=clock)
    for second in range(4):
        outbox.put_metrics(sample(second))
    outbox.put_log(line("resent too: the server keys lines by timestamp and content"))
    for _ in range(5):
        frame = await outbox.next()
        clock.now += 2
        outbox.sent(frame)
    outbox.put_metrics(sample(9))  # buffered while disconnected
    assert outbox.requeue_recent() == 3  # samples sent at 2, 4, 6, 8, the line at 10; window 5 s
    assert await drain(outbox) == [
        sample(2),
        sample(3),
        sample(9),
        line("resent too: the server keys lines by timestamp and content"),
    ]
    assert outbox.requeue_recent() == 0


async def test_unsent_frame_goes_back_to_the_front() -> None:
    outbox = Outbox(metrics_capacity=10, logs_capacity=10)
    outbox.put_metrics(sample(1))
    outbox.put_metrics(sample(2))
    first = await outbox.next()
    outbox.unsend(first)
    assert await drain(outbox) == [sample(1), sample(2)]


async def test_a_zero_buffer_still_sends_live_frames() -> None:
    outbox = Outbox(metrics_capacity=0, logs_capacity=0)
    outbox.put_metrics(sample(1))
    assert await outbox.next() == sample(1)
