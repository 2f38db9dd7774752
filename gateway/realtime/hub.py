"""Dashboard fan-out: one NATS subscription per (server, stream) per gateway (DESIGN §8).

Each incoming message is checked and wrapped into its frame once, then
offered to every local dashboard's bounded queue. Offering never waits: a
dashboard whose queue is full is dropped (close 1013) and nobody else notices.

Anyone with NATS access can publish on these subjects, so a message reaches
dashboards only if it is what ingest would store (or, for alerts, a valid
alert event) for the server named in the subject: junk is dropped and logged,
never shown. That is one validation per message per gateway, not per dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from gateway.realtime.wsio import TRY_AGAIN_LATER, CloseRequest
from opswire.contract.events import AlertEvent
from opswire.contract.jsonlimits import UnfitJson, load_object
from opswire.contract.subjects import Subjects
from opswire.contract.telemetry import LogLine, MetricsSample
from opswire.runtime.nats import from_stream

log = logging.getLogger(__name__)

Stream = Literal["metrics", "logs"]
TOO_SLOW = CloseRequest(TRY_AGAIN_LATER, "too_slow")


class Viewer:
    """One dashboard's outbox, drained by its writer task."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.ended = asyncio.Event()
        self.close: CloseRequest | None = None

    def offer(self, frame: str) -> bool:
        """Queue a frame; False once this viewer is ended (a full queue ends it)."""
        if self.close is not None:
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.end(TOO_SLOW)
            return False
        return True

    def end(self, request: CloseRequest) -> None:
        if self.close is None:
            self.close = request
            self.ended.set()


@dataclass
class _Topic:
    viewers: set[Viewer] = field(default_factory=set)
    subscriptions: list[Subscription] = field(default_factory=list)

    def dispatch(self, frame: str) -> None:
        for viewer in list(self.viewers):
            if not viewer.offer(frame):
                self.viewers.discard(viewer)


class Hub:
    def __init__(self, nc: NatsClient, subjects: Subjects) -> None:
        self._nc = nc
        self._subjects = subjects
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
        async with self._lock:
            key = (stream, server_id)
            topic = self._topics.get(key)
            if topic is None:
                topic = _Topic()
                for subject, frame_type in self._feeds(stream, server_id):
                    forward = _forwarder(topic, frame_type, subject, server_id)
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


def _rejection(frame_type: str, server_id: str, raw: bytes) -> str | None:
    """Why `raw` must not reach a dashboard of `server_id`; None if it may."""
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
    return None


def _forwarder(
    topic: _Topic, frame_type: str, subject: str, server_id: str
) -> Callable[[Msg], Awaitable[None]]:
    head = b'{"type":"' + frame_type.encode() + b'","data":'

    async def forward(msg: Msg) -> None:
        if from_stream(msg.reply):
            # Stored messages pushed back onto a live subject: old news, never shown again.
            log.warning("not forwarded to dashboards", extra={"subject": subject, "reason": "replayed"})
            return
        reason = _rejection(frame_type, server_id, msg.data)
        if reason is not None:
            log.warning("not forwarded to dashboards", extra={"subject": subject, "reason": reason})
            return
        # Forwarded as published: the same object ingest stores and REST returns.
        topic.dispatch((head + msg.data + b"}").decode())

    return forward
