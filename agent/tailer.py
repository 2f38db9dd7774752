"""Follows log files (`--log-file`) and turns each new line into a `log` frame.

Polling, not inotify: it works on every filesystem and costs one stat per file
per poll. Rotation by rename+recreate is noticed by the inode changing (the
rest of the old file is read first); truncation (copytruncate) by the size
dropping below the read position. Lines pass a token bucket; the excess is
counted and reported in one summary line instead of flooding the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from opswire.contract.frames import LogFrame
from opswire.contract.telemetry import LevelName
from opswire.contract.types import utc_now

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 16 * 1024
_MAX_READ_PER_POLL = 1024 * 1024  # bounds one poll's work; the rest is read next time
_SUMMARY_EVERY_S = 10.0
_LEVEL_WORD = re.compile(
    r"\b(trace|debug|info|notice|warn|warning|err|error|severe|crit|critical|fatal|emerg|panic)\b",
    re.IGNORECASE,
)
_LEVELS: dict[str, LevelName] = {
    "trace": "debug", "debug": "debug", "info": "info", "notice": "info",
    "warn": "warning", "warning": "warning", "err": "error", "error": "error",
    "severe": "error", "crit": "critical", "critical": "critical", "fatal": "critical",
    "emerg": "critical", "panic": "critical",
}  # fmt: skip


def guess_level(line: str) -> LevelName:
    """The first level word in the line wins ("INFO no errors" is info); default info."""
    match = _LEVEL_WORD.search(line, 0, 256)
    return _LEVELS[match.group(1).lower()] if match else "info"


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._tokens, self._last = float(burst), clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass
class _File:
    path: Path
    handle: BinaryIO | None = None
    identity: tuple[int, int] | None = None
    position: int = 0
    partial: bytes = b""
    start_at_end: bool = False  # existed when tailing began: only lines written from now on
    open_failed: bool = False

    def poll(self) -> list[str]:
        try:
            st = os.stat(self.path)
        except OSError:  # rotated away and not recreated yet: finish the old file
            return self._drain() if self.handle else []
        lines: list[str] = []
        if self.handle is not None and (st.st_dev, st.st_ino) != self.identity:
            lines += self._drain(final=True)
            self.close()
        if self.handle is None:
            self._open(st)
        elif st.st_size < self.position:
            log.info("log file truncated", extra={"path": str(self.path)})
            self.handle.seek(0)
            self.position, self.partial = 0, b""
        return lines + self._drain()

    def _open(self, st: os.stat_result) -> None:
        try:
            self.handle = open(self.path, "rb")  # kept open across polls
        except OSError as exc:
            if not self.open_failed:  # once, not on every poll
                log.warning("cannot open log file", extra={"path": str(self.path), "error": str(exc)})
            self.open_failed = True
            return
        self.identity = (st.st_dev, st.st_ino)
        # A file recreated after rotation is new: read it from its start.
        self.position = self.handle.seek(0, os.SEEK_END) if self.start_at_end else 0
        self.partial, self.start_at_end, self.open_failed = b"", False, False

    def _drain(self, final: bool = False) -> list[str]:
        assert self.handle is not None
        data = self.partial + self.handle.read(_MAX_READ_PER_POLL)
        self.position = self.handle.tell()
        pieces = data.split(b"\n")
        self.partial = b"" if final else pieces.pop()
        if len(self.partial) > MAX_LINE_CHARS:  # a runaway line without newline: emit what we have
            pieces.append(self.partial)
            self.partial = b""
        return [_text(piece) for piece in pieces if piece.strip()]

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle, self.identity, self.position, self.partial = None, None, 0, b""


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + " [truncated]"


class LogTailer:
    def __init__(
        self,
        paths: list[Path],
        sink: Callable[[LogFrame], None],
        *,
        rate_per_s: float = 50.0,
        burst: int = 200,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._files = [_File(Path(p), start_at_end=Path(p).exists()) for p in paths]
        self._sink = sink
        self._bucket = TokenBucket(rate_per_s, burst, clock)
        self._poll_s = poll_s
        self._clock = clock
        self._dropped: Counter[str] = Counter()
        self._last_summary = clock()

    async def run(self) -> None:
        try:
            while True:
                self.deliver(await asyncio.to_thread(self.read_new_lines))
                await asyncio.sleep(self._poll_s)
        finally:
            self.close()

    def close(self) -> None:
        for file in self._files:
            file.close()

    def read_new_lines(self) -> list[tuple[str, str]]:
        """(source, line) for every complete new line in every file (blocking I/O)."""
        return [(str(f.path), line) for f in self._files for line in f.poll()]

    def deliver(self, lines: list[tuple[str, str]]) -> None:
        dropped_now = False
        for source, line in lines:
            if self._bucket.take():
                self._sink(_frame(guess_level(line), line, source))
            else:
                self._dropped[source] += 1
                dropped_now = True
        now = self._clock()
        if self._dropped and (not dropped_now or now - self._last_summary >= _SUMMARY_EVERY_S):
            self._summarise(now)

    def _summarise(self, now: float) -> None:
        counts = ", ".join(f"{n} from {path}" for path, n in self._dropped.items())
        total = sum(self._dropped.values())
        message = (
            f"opswire agent: {total} log lines dropped by the rate limit "
            f"({self._bucket.rate:g} lines/s): {counts}"
        )
        log.warning("log lines dropped by rate limit", extra={"dropped": total})
        self._sink(_frame("warning", message, "opswire-agent"))
        self._dropped.clear()
        self._last_summary = now


def _frame(level: LevelName, message: str, source: str) -> LogFrame:
    return LogFrame(type="log", level=level, message=message, timestamp=utc_now(), source=source[-255:])
