"""Child processes of `opswire up`: started in order, output prefixed, restarted when they die."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STOP_TIMEOUT_S = 15.0


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
            *child.argv, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )

    async def _keep_running(self, child: Child) -> None:
        backoff = 1.0
        while not self.stopping:
            child.process = await self._spawn(child)
            assert child.process.stdout is not None
            await self._pump(child.name, child.process.stdout)
            code = await child.process.wait()
            if self.stopping:
                return
            child.restarts += 1
            self._say(child.name, f"exited with code {code}; restarting in {backoff:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._say(name, line.decode(errors="replace").rstrip())

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
