"""Dashboard fan-out: one NATS subscription per (server, stream) per gateway (DESIGN §8).

Each incoming message is checked and wrapped into its frame once (one
serialisation for all viewers), then offered to every local dashboard's
outbox. Offering never waits: samples are conflated for a lagging dashboard,
a dashboard whose queue of other frames is full is dropped (close 1013) and
nobody else notices. A message whose `Nats-Msg-Id` was shown lately (a retried
publish) is not shown again.

Anyone with NATS access can publish on these subjects, so a message reaches
dashboards only if it is what ingest would store (or, for alerts, a valid
alert event) for the server named in the subject: junk is dropped and logged,
never shown. That is one validation per message per gateway, not per dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from gateway.realtime.wsio import TRY_AGAIN_LATER, CloseRequest, closing
from opswire.contract.events import AlertEvent
from opswire.contract.jsonlimits import UnfitJson, load_object
from opswire.contract.subjects import Subjects
from opswire.contract.telemetry import LogLine, MetricsSample
from opswire.runtime.nats import from_stream
from opswire.runtime.publisher import MSG_ID

log = logging.getLogger(__name__)

Stream = Literal["metrics", "logs"]
TOO_SLOW = CloseRequest(TRY_AGAIN_LATER, "too_slow")
CROWDED = closing(
    TRY_AGAIN_LATER, "rate_limited", "Too many dashboards for this server", reason="too_many_dashboards"
)


class _Latest:
    """A metrics frame waiting in a viewer's outbox; a newer sample replaces its text."""

    __slots__ = ("frame", "stamp")

    def __init__(self, frame: str, stamp: datetime) -> None:
        self.frame = frame
        self.stamp = stamp


class Viewer:
    """One dashboard's outbox, drained by its writer task.

    Samples are conflated: while one waits unsent, a newer one takes its place
    (a lagging dashboard gets the newest sample, not a backlog). Other frames
    (alerts, log lines) queue up to `queue_size`; a full queue ends the viewer.
    """

    def __init__(self, queue_size: int, stall_s: float = 30.0) -> None:
        self.queue: deque[str | _Latest] = deque()
        self.stall_s = stall_s  # a send blocked this long: the dashboard stopped reading
        self.ended = asyncio.Event()
        self.close: CloseRequest | None = None
        self._queue_size = queue_size
        self._latest: _Latest | None = None
        self._ready = asyncio.Event()

    def offer(self, frame: str, sample_at: datetime | None = None) -> bool:
        """Queue a frame (a sample: with its timestamp, to conflate); False once this viewer
        is ended (a full queue ends it)."""
        if self.close is not None:
            return False
        if sample_at is not None and self._latest is not None:
            if sample_at >= self._latest.stamp:  # a retried older sample never replaces a newer one
                self._latest.frame, self._latest.stamp = frame, sample_at
            return True
        if len(self.queue) >= self._queue_size:
            self.end(TOO_SLOW)
            return False
        if sample_at is not None:
            self._latest = _Latest(frame, sample_at)
            self.queue.append(self._latest)
        else:
            self.queue.append(frame)
        self._ready.set()
        return True

    async def next(self) -> str:
        """The next frame to send, waiting for one."""
        while not self.queue:
            self._ready.clear()
            await self._ready.wait()
        item = self.queue.popleft()
        if isinstance(item, str):
            return item
        if item is self._latest:
            self._latest = None
        return item.frame

    def end(self, request: CloseRequest) -> None:
        if self.close is None:
            self.close = request
            self.ended.set()


class Crowded(Exception):
    """Too many dashboards already watch this server here."""

    def __init__(self, request: CloseRequest) -> None:
        super().__init__(request.reason)
        self.request = request


@dataclass
class _Topic:
    viewers: set[Viewer] = field(default_factory=set)
    subscriptions: list[Subscription] = field(default_factory=list)

    def dispatch(self, frame: str, sample_at: datetime | None) -> None:
        for viewer in list(self.viewers):
            if not viewer.offer(frame, sample_at):
                self.viewers.discard(viewer)


class Hub:
    def __init__(
        self, nc: NatsClient, subjects: Subjects, max_viewers: int = 100, dedup_window: int = 1024
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self._max_viewers = max_viewers
        self._dedup_window = dedup_window
        self._topics: dict[tuple[Stream, str], _Topic] = {}
        self._lock = asyncio.Lock()  # join/leave only; dispatch never takes it

    def subscription_count(self) -> int:
        return sum(len(topic.subscriptions) for topic in self._topics.values())

    def viewer_count(self, stream: Stream, server_id: str) -> int:
        topic = self._topics.get((stream, server_id))
        return len(topic.viewers) if topic is not None else 0

    def _feeds(self, stream: Stream, server_id: str) -> list[tuple[str, str]]:
        """(subject, frame type) pairs that make up a stream."""
        if stream == "metrics":
            return [
                (self._subjects.metrics(server_id), "metrics"),
                (self._subjects.alerts(server_id), "alert"),
            ]
        return [(self._subjects.logs(server_id), "log")]

    async def join(self, stream: Stream, server_id: str, viewer: Viewer) -> None:
        """Add a viewer of the stream; raises `Crowded` when the server has too many here."""
        async with self._lock:
            key = (stream, server_id)
            topic = self._topics.get(key)
            if topic is not None and len(topic.viewers) >= self._max_viewers:
                raise Crowded(CROWDED)
            if topic is None:
                topic = _Topic()
                for subject, frame_type in self._feeds(stream, server_id):
                    forward = _forwarder(topic, frame_type, subject, server_id, self._dedup_window)
                    topic.subscriptions.append(await self._nc.subscribe(subject, cb=forward))
                # Live before the caller asks for the latest sample, so nothing falls in between.
                await self._nc.flush()
                self._topics[key] = topic
            topic.viewers.add(viewer)

    async def leave(self, stream: Stream, server_id: str, viewer: Viewer) -> None:
        async with self._lock:
            key = (stream, server_id)
            topic = self._topics.get(key)
            if topic is None:
                return
            topic.viewers.discard(viewer)
            if topic.viewers:
                return
            del self._topics[key]
            for sub in topic.subscriptions:
                try:
                    await sub.unsubscribe()
                except Exception as exc:  # connection closing: the server forgets it anyway
                    log.debug("unsubscribe failed", extra={"error": repr(exc)})


_PAYLOADS: dict[str, type[MetricsSample | LogLine | AlertEvent]] = {
    "metrics": MetricsSample,
    "log": LogLine,
    "alert": AlertEvent,
}


def _checked(frame_type: str, server_id: str, raw: bytes) -> MetricsSample | LogLine | AlertEvent | str:
    """The payload `raw` carries if it may reach a dashboard of `server_id`; else why not."""
    try:
        data = load_object(raw)
    except UnfitJson as exc:
        return str(exc)
    try:
        payload = _PAYLOADS[frame_type].model_validate(data)
    except ValidationError:
        return "not a valid payload"
    if str(payload.server_id) != server_id:
        return "server_id differs from the subject"
    return payload


def _forwarder(
    topic: _Topic, frame_type: str, subject: str, server_id: str, window: int
) -> Callable[[Msg], Awaitable[None]]:
    head = b'{"type":"' + frame_type.encode() + b'","data":'
    # Nats-Msg-Ids shown lately: a publish retried after a reconnect reaches us twice (the
    # stream stores it once); dashboards see it once (issue 9.4). Bounded, oldest forgotten.
    shown: OrderedDict[str, None] = OrderedDict()

    async def forward(msg: Msg) -> None:
        if from_stream(msg.reply):
            # Stored messages pushed back onto a live subject: old news, never shown again.
            log.warning("not forwarded to dashboards", extra={"subject": subject, "reason": "replayed"})
            return
        payload = _checked(frame_type, server_id, msg.data)
        if isinstance(payload, str):
            log.warning("not forwarded to dashboards", extra={"subject": subject, "reason": payload})
            return
        msg_id = msg.headers.get(MSG_ID) if msg.headers else None
        if msg_id is not None:
            if msg_id in shown:
                shown.move_to_end(msg_id)
                return
            shown[msg_id] = None
            if len(shown) > window:
                shown.popitem(last=False)
        # Forwarded as published: the same object ingest stores and REST returns, encoded once.
        sample_at = payload.timestamp if isinstance(payload, MetricsSample) else None
        topic.dispatch((head + msg.data + b"}").decode(), sample_at)

    return forward
