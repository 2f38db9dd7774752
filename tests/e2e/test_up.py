"""`opswire up` as a new user runs it: embedded NATS and PostgreSQL, --demo, Ctrl-C, restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from opswire.launcher.embedded import free_port
from tests.helpers.client import Api, eventually


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="opswire-up-") as tmp:
        yield Path(tmp) / "data"


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
            env=env, stdout=out, stderr=subprocess.STDOUT,
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


async def test_up_runs_everything_stops_cleanly_and_keeps_data(data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with opswire_up(data_dir, port, "--demo") as (process, banner):
        assert base in banner and re.search(r"NATS\s+nats://127\.0\.0\.1:\d+", banner)
        assert "embedded PostgreSQL" in banner
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 5  # four services and the demo agent
        demo = json.loads((data_dir / "demo.json").read_text())
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            login = await http.post("/api/v1/auth/login", json=_credentials(demo))
            api = Api(http, login.json()["access_token"])

            async def demo_sample() -> dict[str, object] | None:
                reply = await api.get(f"/metrics/{demo['server_id']}")
                return reply.json() if reply.status_code == 200 else None

            assert 0 <= float((await eventually(demo_sample, timeout_s=30))["cpu_percent"]) <= 100  # type: ignore[arg-type]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    async with opswire_up(data_dir, port) as (process, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            login = await http.post("/api/v1/auth/login", json=_credentials(demo))
            assert login.status_code == 200, "users survive a restart"
            api = Api(http, login.json()["access_token"])
            assert (await api.get(f"/metrics/{demo['server_id']}")).status_code == 200, "metrics survive too"
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 60) == 0


def _credentials(demo: dict[str, str]) -> dict[str, str]:
    return {"email": demo["email"], "password": demo["password"]}
