"""Logs socket resume (DESIGN §3): `{"type":"auth","token":…,"since":"<timestamp>"}`.

A dashboard that reconnects names the last instant it has seen; it gets the stored
lines after that instant, then the live ones, with nothing missing and nothing twice:

1. the viewer joins the live subscription first (live lines queue up meanwhile);
2. the stored lines after `since` are fetched from ingest (`logs.query`, at most
   `OPSWIRE_LOGS_RESUME_LIMIT`, the newest if there are more) and sent oldest first;
3. a live line that was also replayed is dropped — from what queued up during the
   replay and from what arrives later (a line can reach ingest before this gateway).

A line is recognised by its timestamp, the gateway's `received_at` and a digest of
its message: two distinct lines never share all three.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.websockets import WebSocket

from gateway.realtime.hub import Viewer
from gateway.realtime.wsio import send_error, send_text
from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

LineKey = tuple[datetime, datetime, bytes]
_LOG_HEAD = '{"type":"log"'
HISTORY_UNAVAILABLE = "Log history unavailable; live lines only"


def since_of(ws: WebSocket) -> datetime | None:
    """The resume point the dashboard's auth frame named, if any."""
    since = getattr(ws.state, "resume_since", None)
    return since if isinstance(since, datetime) else None


def _instant(value: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def line_key(line: dict[str, Any]) -> LineKey | None:
    timestamp, received = _instant(line.get("timestamp")), _instant(line.get("received_at"))
    if timestamp is None or received is None:
        return None
    digest = hashlib.blake2b(str(line.get("message", "")).encode(), digest_size=16).digest()
    return timestamp, received, digest


def _frame_key(frame: str) -> LineKey | None:
    if not frame.startswith(_LOG_HEAD):
        return None
    try:
        data = orjson.loads(frame).get("data")
    except orjson.JSONDecodeError:
        return None
    return line_key(data) if isinstance(data, dict) else None


class ResumingViewer(Viewer):
    """A logs viewer that drops live lines it was already sent by the replay."""

    def __init__(self, queue_size: int, stall_s: float = 30.0) -> None:
        super().__init__(queue_size, stall_s)
        self._replayed: set[LineKey] = set()

    def offer(self, frame: str, sample_at: datetime | None = None) -> bool:
        if self._replayed and _frame_key(frame) in self._replayed:
            return True  # sent already, by the replay
        return super().offer(frame, sample_at)

    def replayed(self, keys: set[LineKey]) -> None:
        """From now on, drop these lines; also from what queued up during the replay."""
        self._replayed = keys
        kept = [item for item in self.queue if not (isinstance(item, str) and _frame_key(item) in keys)]
        self.queue.clear()
        self.queue.extend(kept)


async def replay_logs(
    ws: WebSocket,
    rpc: RpcClient,
    server: uuid.UUID,
    since: datetime,
    limit: int,
    viewer: ResumingViewer,
) -> bool:
    """Send the stored lines after `since`, oldest first; False if the dashboard left.

    Ingest being away is told with an error frame (code `unavailable`) and the socket
    goes live anyway: a dashboard must know it may have missed lines.
    """
    try:
        stored = await rpc.call(calls.LOGS_QUERY, calls.LogsQuery(server_id=server, start=since, limit=limit))
    except RpcError as exc:
        log.warning("log replay unavailable", extra={"server_id": str(server), "code": exc.code})
        return await send_error(ws, "unavailable", HISTORY_UNAVAILABLE, exc.code)
    keys: set[LineKey] = set()
    lines = stored if isinstance(stored, list) else []
    for line in reversed(lines):  # ingest answers newest first
        key = line_key(line) if isinstance(line, dict) else None
        if key is None or key[0] <= since or key in keys:
            continue  # "after that instant"; the query's start is inclusive
        keys.add(key)
        if not await send_text(ws, orjson.dumps({"type": "log", "data": line}).decode()):
            return False
    viewer.replayed(keys)
    return True
