"""The outbox: every frame the agent sends waits here until a connection takes it.

While disconnected it fills up, bounded per kind (oldest dropped first, and
counted); after a reconnect everything goes out with its original timestamp.
The protocol has no ack, so samples and log lines sent in the last
`resend_window_s` before a connection dropped are put back and sent again: the
server stores each sample once per (server_id, timestamp) and each log line
once per (server_id, timestamp, source, message), so a resend is harmless and
a frame that vanished into a dead TCP connection is not lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from opswire.contract.frames import CommandResponse, DockerResponse, LogFrame, MetricsFrame

log = logging.getLogger(__name__)

OutgoingFrame = MetricsFrame | LogFrame | CommandResponse | DockerResponse
REPLY_CAPACITY = 1000


class _Queue:
    def __init__(self, kind: str, capacity: int) -> None:
        # Also the live send path: it must hold at least one frame.
        self.kind, self.capacity = kind, max(1, capacity)
        self.items: deque[OutgoingFrame] = deque()
        self.dropped = 0
        self._full_warned = False

    def put(self, frame: OutgoingFrame) -> None:
        self.items.append(frame)
        if len(self.items) > self.capacity:
            self.items.popleft()
            self.dropped += 1
            if not self._full_warned:
                log.warning(
                    "outbox full: dropping the oldest entries",
                    extra={"kind": self.kind, "capacity": self.capacity},
                )
                self._full_warned = True
        elif len(self.items) < self.capacity // 2:
            self._full_warned = False


class Outbox:
    def __init__(
        self,
        *,
        metrics_capacity: int,
        logs_capacity: int,
        resend_window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Replies first: someone is waiting for them; then samples; then log lines.
        self.replies = _Queue("replies", REPLY_CAPACITY)
        self.metrics = _Queue("metrics", metrics_capacity)
        self.logs = _Queue("logs", logs_capacity)
        self._queues = (self.replies, self.metrics, self.logs)
        self.resend_window_s = resend_window_s
        self._recent: deque[tuple[float, MetricsFrame | LogFrame]] = deque()
        self._clock = clock
        self._ready = asyncio.Event()

    def put_metrics(self, frame: MetricsFrame) -> None:
        self._put(self.metrics, frame)

    def put_log(self, frame: LogFrame) -> None:
        self._put(self.logs, frame)

    def put_reply(self, frame: CommandResponse | DockerResponse) -> None:
        self._put(self.replies, frame)

    def _put(self, queue: _Queue, frame: OutgoingFrame) -> None:
        queue.put(frame)
        self._ready.set()

    def __len__(self) -> int:
        return sum(len(q.items) for q in self._queues)

    async def next(self) -> OutgoingFrame:
        """The next frame to send; hand it back with `unsend` if sending fails."""
        while True:
            for queue in self._queues:
                if queue.items:
                    return queue.items.popleft()
            self._ready.clear()
            await self._ready.wait()

    def unsend(self, frame: OutgoingFrame) -> None:
        """A frame that could not be sent goes back to the front of its queue."""
        self._queue_of(frame).items.appendleft(frame)
        self._ready.set()

    def sent(self, frame: OutgoingFrame) -> None:
        if not isinstance(frame, MetricsFrame | LogFrame) or self.resend_window_s <= 0:
            return
        now = self._clock()
        self._recent.append((now, frame))
        while self._recent and self._recent[0][0] < now - self.resend_window_s:
            self._recent.popleft()

    def requeue_recent(self) -> int:
        """After a connection loss: frames sent in the resend window go out again."""
        cutoff = self._clock() - self.resend_window_s
        frames = [frame for sent_at, frame in self._recent if sent_at >= cutoff]
        self._recent.clear()
        for frame in reversed(frames):
            self._queue_of(frame).items.appendleft(frame)
        if frames:
            self._ready.set()
        return len(frames)

    def _queue_of(self, frame: OutgoingFrame) -> _Queue:
        if isinstance(frame, MetricsFrame):
            return self.metrics
        if isinstance(frame, LogFrame):
            return self.logs
        return self.replies
