"""`opswire up` as a user runs it, in a child process (its own embedded NATS and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


@asynccontextmanager
async def opswire_up(
    data_dir: Path, port: int, *args: str
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL", "OPSWIRE_JWT_SECRET"}}
    log = data_dir.parent / "up.log"
    log.touch()
    offset = len(log.read_text())  # earlier runs' output is in the same file
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for in a thread
            [sys.executable, "-m", "opswire", "up", "--port", str(port), "--data-dir", str(data_dir), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while "opswire is up" not in (output := log.read_text()[offset:]):
        assert process.poll() is None, output[-3000:]
        assert time.monotonic() < deadline, output[-3000:]
        await asyncio.sleep(0.1)
    try:
        yield process, output
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 60)
