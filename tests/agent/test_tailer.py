from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.tailer import LogTailer, TokenBucket, guess_level
from opswire.contract.frames import LogFrame, encode, parse_agent_frame


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[LogTailer, list[LogFrame]]]]:
    made: list[LogTailer] = []

    def build(paths: list[Path], **kwargs: Any) -> tuple[LogTailer, list[LogFrame]]:
        sent: list[LogFrame] = []
        made.append(LogTailer(paths, sent.append, **kwargs))
        return made[-1], sent

    yield build
    for tailer in made:
        tailer.close()


Make = Callable[..., tuple[LogTailer, list[LogFrame]]]


def poll(tailer: LogTailer) -> None:
    tailer.deliver(tailer.read_new_lines())


def test_only_new_complete_lines_are_sent(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("old line written before the agent started\n")
    tailer, sent = make([log])
    poll(tailer)
    assert sent == []

    append(log, "ERROR disk on fire\nhalf a li")
    poll(tailer)
    append(log, "ne\n")
    poll(tailer)
    assert [(f.level, f.message, f.source) for f in sent] == [
        ("error", "ERROR disk on fire", str(log)),
        ("info", "half a line", str(log)),
    ]
    assert isinstance(parse_agent_frame(encode(sent[0])), LogFrame)


def test_rotation_by_rename_and_recreate(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tailer, sent = make([log])
    poll(tailer)
    append(log, "before rotation\n")
    os.rename(log, tmp_path / "app.log.1")
    append(tmp_path / "app.log.1", "late write to the old file\n")
    poll(tailer)  # path missing for now: the old file is still read
    log.write_text("first line of the new file\n")
    append(tmp_path / "app.log.1", "last words of the old file\n")
    poll(tailer)
    assert [f.message for f in sent] == [
        "before rotation",
        "late write to the old file",
        "last words of the old file",
        "first line of the new file",
    ]


def test_truncation_starts_over(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tailer, sent = make([log])
    poll(tailer)
    append(log, "a fairly long line before copytruncate\n")
    poll(tailer)
    log.write_text("")  # truncate in place, same inode
    poll(tailer)
    append(log, "after\n")
    poll(tailer)
    assert [f.message for f in sent] == ["a fairly long line before copytruncate", "after"]


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "later.log"
    tailer, sent = make([log])
    poll(tailer)
    log.write_text("one\ntwo\n")
    poll(tailer)
    assert [f.message for f in sent] == ["one", "two"]


def test_rate_limit_counts_the_excess_and_reports_it_once(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "noisy.log"
    log.write_text("")
    clock = Clock()
    tailer, sent = make([log], rate_per_s=10, burst=5, clock=clock)
    poll(tailer)
    append(log, "".join(f"line {i}\n" for i in range(50)))
    poll(tailer)
    assert [f.message for f in sent] == [f"line {i}" for i in range(5)]  # no summary mid-flood

    clock.now += 1  # 10 more tokens, but the flood is over: one summary line
    poll(tailer)
    assert len(sent) == 6
    summary = sent[-1]
    assert summary.level == "warning" and summary.source == "opswire-agent"
    assert "45 log lines dropped" in summary.message and str(log) in summary.message

    append(log, "calm again\n")
    poll(tailer)
    assert sent[-1].message == "calm again" and len(sent) == 7


def test_token_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2024-01-01 12:00:00 ERROR failed to connect", "error"),
        ("[warn] low disk", "warning"),
        ("CRITICAL: out of memory", "critical"),
        ("kernel: panic - not syncing", "critical"),
        ("DEBUG cache hit", "debug"),
        ("INFO no errors found", "info"),
        ("GET /index.html 200", "info"),
        ("terror is not an error level", "error"),
    ],
)
def test_level_is_guessed_from_the_line(line: str, level: str) -> None:
    assert guess_level(line) == level


async def test_runs_in_the_event_loop_and_delivers_lines(tmp_path: Path) -> None:
    log = tmp_path / "live.log"  # created after tailing began: read from its start
    received: asyncio.Queue[LogFrame] = asyncio.Queue()
    tailer = LogTailer([log], received.put_nowait, poll_s=0.02)
    task = asyncio.create_task(tailer.run())
    try:
        append(log, "WARNING live line\n")
        async with asyncio.timeout(5):
            frame = await received.get()
        assert (frame.level, frame.message) == ("warning", "WARNING live line")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
