"""The reference agent (`opswire agent`, a real process) against the real stack."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers.client import Api, Socket, eventually
from tests.helpers.stack import Stack

INTERVAL_S = 0.25


@asynccontextmanager
async def running_agent(
    stack: Stack, key: str, log_dir: Path, *args: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, OPSWIRE_API_KEY=key, DOCKER_HOST="unix:///nonexistent/docker.sock")
    with (log_dir / "agent.log").open("ab") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for in a thread
            [
                sys.executable,
                "-m",
                "opswire",
                "agent",
                "--url",
                stack.base_url,
                "--interval",
                str(INTERVAL_S),
                "--backoff-initial",
                "0.2",
                "--backoff-max",
                "1",
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 15)


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


async def _history(api: Api, server_id: str, minimum: int = 1) -> list[dict[str, object]] | None:
    samples: list[dict[str, object]] = (
        await api.get(f"/metrics/{server_id}/history", params={"limit": 10000})
    ).json()
    return samples if len(samples) >= minimum else None


async def test_agent_metrics_commands_logs_and_docker(
    stack: Stack, http: httpx.AsyncClient, log_dir: Path
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    tailed = log_dir / "app.log"
    tailed.write_text("")
    async with running_agent(stack, key, log_dir, "--log-file", str(tailed), "--max-output-bytes", "4096"):
        dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, api.token or "")
        sample = (await dashboard.recv_type("metrics", timeout_s=20))["data"]
        assert 0 <= sample["cpu_percent"] <= 100 and 0 < sample["memory_percent"] <= 100
        assert sample["disk_usage"] and all(d["total"] > 0 for d in sample["disk_usage"])
        assert any(n["interface"] == "lo" for n in sample["network"])
        assert len(sample["load_average"]) == 3 and sample["uptime_seconds"] > 0

        ok = (await api.post(f"/commands/{server_id}", json={"command": "echo $((6 * 7))"})).json()
        assert ok["status"] == "succeeded" and ok["output"].strip() == "42" and ok["exit_code"] == 0
        assert ok["duration_ms"] >= 0
        failed = (await api.post(f"/commands/{server_id}", json={"command": "exit 3"})).json()
        assert failed["status"] == "failed" and failed["exit_code"] == 3

        # A timeout kills the whole process group, grandchildren included.
        pid_file = log_dir / "grandchild.pid"
        slow = await api.post(
            f"/commands/{server_id}",
            json={"command": f"sh -c 'sleep 300 & echo $! > {pid_file}; wait'", "timeout_s": 1},
        )
        assert slow.json()["status"] == "timeout"
        grandchild = int(pid_file.read_text())
        await eventually(lambda: _gone(grandchild), timeout_s=5)

        capped = (await api.post(f"/commands/{server_id}", json={"command": "yes | head -c 100000"})).json()
        assert capped["truncated"] is True and len(capped["output"]) <= 4096

        # No Docker engine: answered cleanly, the agent keeps working.
        docker = await api.post(f"/docker/{server_id}/containers/web/restart")
        assert docker.status_code == 200 and docker.json()["success"] is False
        assert docker.json()["message"]

        with tailed.open("a") as f:
            f.write("ERROR something broke\n")
        logs = await eventually(lambda: _logs(api, server_id))
        assert logs[0]["message"] == "ERROR something broke" and logs[0]["level"] == "error"
        assert logs[0]["source"] == str(tailed)
        await dashboard.close()


async def test_agent_survives_a_gateway_restart_without_losing_samples(
    stack: Stack, http: httpx.AsyncClient, log_dir: Path
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    tailed = log_dir / "service.log"
    tailed.write_text("")
    async with running_agent(stack, key, log_dir, "--log-file", str(tailed)):
        await eventually(lambda: _history(api, server_id, minimum=3), timeout_s=20)
        _append(tailed, "before the outage")
        await eventually(lambda: _logs(api, server_id))
        agent_log = log_dir / "agent.log"
        seen = len(agent_log.read_text())
        await stack.stop("gateway")
        stopped_at = datetime.now().astimezone()
        _append(tailed, "during the outage")

        async def agent_saw_the_outage() -> bool:
            # The agent tried the gateway and could not reach it: it is buffering now.
            return "cannot reach the gateway" in agent_log.read_text()[seen:]

        await eventually(agent_saw_the_outage, timeout_s=30)
        await stack.start("gateway")
        await stack.wait_ready()
        _append(tailed, "after the outage")
        lines = await eventually(lambda: _logs(api, server_id, minimum=3), timeout_s=30)
        assert sorted(str(line["message"]) for line in lines) == [
            "after the outage",
            "before the outage",
            "during the outage",
        ], "each line stored once"
        after = await eventually(lambda: _sample_after(api, server_id, stopped_at, seconds=2), timeout_s=30)
        timestamps = [datetime.fromisoformat(str(s["timestamp"])) for s in after]
        assert len(timestamps) == len(set(timestamps)), "each sample stored once"
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(timestamps)]
        assert max(gaps) < INTERVAL_S * 3, f"a hole in the history: {max(gaps):.2f} s"
        assert timestamps[0] < stopped_at, "history runs continuously across the outage"


async def _sample_after(
    api: Api, server_id: str, moment: datetime, seconds: float
) -> list[dict[str, object]] | None:
    samples = await _history(api, server_id) or []
    newest = datetime.fromisoformat(str(samples[-1]["timestamp"])) if samples else None
    if newest is None or (newest - moment).total_seconds() < 3 + seconds:
        return None
    return samples


async def _logs(api: Api, server_id: str, minimum: int = 1) -> list[dict[str, object]] | None:
    logs: list[dict[str, object]] = (await api.get(f"/logs/{server_id}")).json()
    return logs if len(logs) >= minimum else None


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")


async def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
