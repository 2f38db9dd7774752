"""Child processes of `opswire up`: started in order, output prefixed, restarted when they die."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STOP_TIMEOUT_S = 15.0
# Output is read in chunks, never with readline(): a line over the stream's limit (64 KiB)
# would raise and leave the child unsupervised. Longer lines are printed in pieces.
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_CHARS = 16 * 1024


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self._stop = asyncio.Event()
        self._width = 8

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def add(self, child: Child) -> None:
        self.children.append(child)
        self._width = max(self._width, len(child.name))

    async def start(self) -> None:
        for child in self.children:
            if child._task is None:
                child._task = asyncio.create_task(self._keep_running(child))

    async def wait(self) -> None:
        await self._stop.wait()

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env.update(child.env)
        env["PYTHONUNBUFFERED"] = "1"
        return await asyncio.create_subprocess_exec(
            *child.argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )

    async def _keep_running(self, child: Child) -> None:
        backoff = 1.0
        while not self.stopping:
            child.process = await self._spawn(child)
            assert child.process.stdout is not None
            try:
                await self._pump(child.name, child.process.stdout)
            except Exception as exc:  # never stop supervising over output
                self._say(child.name, f"output pump failed ({exc.__class__.__name__}: {exc}); output dropped")
                while await child.process.stdout.read(READ_CHUNK_BYTES):
                    pass  # keep the pipe drained so the child never blocks on a write
            code = await child.process.wait()
            if self.stopping:
                return
            child.restarts += 1
            self._say(child.name, f"exited with code {code}; restarting in {backoff:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""  # the unfinished last line, at most MAX_LINE_CHARS
        continued = False  # pending continues a line already partly printed
        while chunk := await stream.read(READ_CHUNK_BYTES):
            *lines, pending = (pending + decoder.decode(chunk)).split("\n")
            for line in lines:
                self._say_line(name, line, continued)
                continued = False
            while len(pending) > MAX_LINE_CHARS:
                self._say_line(name, pending[:MAX_LINE_CHARS], continued)
                pending, continued = pending[MAX_LINE_CHARS:], True
        pending += decoder.decode(b"", final=True)
        if pending:
            self._say_line(name, pending, continued)

    def _say_line(self, name: str, line: str, continued: bool) -> None:
        """One line of output, in pieces of MAX_LINE_CHARS; pieces after the first start with '… '."""
        line = line.rstrip()
        if continued and not line:
            return  # the line's end came right after a printed piece
        for start in range(0, max(len(line), 1), MAX_LINE_CHARS):
            piece = line[start : start + MAX_LINE_CHARS]
            self._say(name, f"… {piece}" if continued or start else piece)

    def _say(self, name: str, text: str) -> None:
        sys.stdout.write(f"[{name:<{self._width}}] {text}\n")
        sys.stdout.flush()

    async def stop(self) -> None:
        """Stop children in reverse start order: SIGTERM, then SIGKILL after a grace period."""
        self._stop.set()
        for child in reversed(self.children):
            process = child.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    self._say(child.name, "did not stop in time; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            if child._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await child._task
