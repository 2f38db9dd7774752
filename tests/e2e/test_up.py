"""`opswire up` as a new user runs it: embedded NATS and PostgreSQL, --demo, Ctrl-C, restart."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from opswire.launcher.embedded import free_port
from tests.helpers.client import Api, eventually
from tests.helpers.up import opswire_up


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="opswire-up-") as tmp:
        yield Path(tmp) / "data"


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
