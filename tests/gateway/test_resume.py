"""ResumingViewer: a line the replay sent is not delivered again live — neither one that
queued up during the replay nor one that arrives after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from gateway.realtime.resume import ResumingViewer, line_key

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def line(i: int) -> dict[str, str]:
    return {
        "level": "info",
        "message": f"line {i}",
        "server_id": "s",
        "timestamp": (BASE + timedelta(seconds=i)).isoformat(),
        "received_at": (BASE + timedelta(seconds=i, milliseconds=5)).isoformat(),
    }


def frame(i: int) -> str:
    return orjson.dumps({"type": "log", "data": line(i)}).decode()


def queued(viewer: ResumingViewer) -> list[str]:
    frames = []
    while viewer.queue:
        item = viewer.queue.popleft()
        assert isinstance(item, str)  # log lines queue as they are; only samples conflate
        frames.append(orjson.loads(item)["data"]["message"])
    return frames


def test_replayed_lines_are_dropped_from_the_queue_and_from_later_offers() -> None:
    viewer = ResumingViewer(queue_size=10)
    assert viewer.offer(frame(2)) and viewer.offer(frame(3))  # live, during the replay
    replayed = {line_key(line(i)) for i in (1, 2)}
    viewer.replayed({key for key in replayed if key is not None})
    assert viewer.offer(frame(1))  # reached ingest before this gateway: dropped, not an error
    assert viewer.offer(frame(4))
    assert queued(viewer) == ["line 3", "line 4"]


def test_same_instant_but_another_line_is_not_a_duplicate() -> None:
    viewer = ResumingViewer(queue_size=10)
    twin = {**line(1), "message": "another line"}
    key = line_key(line(1))
    assert key is not None
    viewer.replayed({key})
    viewer.offer(orjson.dumps({"type": "log", "data": twin}).decode())
    assert queued(viewer) == ["another line"]
    # The same instant written differently (Z vs +00:00) is still the same line.
    assert line_key({**line(1), "timestamp": line(1)["timestamp"].replace("+00:00", "Z")}) == key
